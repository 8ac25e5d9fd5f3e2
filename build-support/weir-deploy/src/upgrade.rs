//! Rolling upgrades: the instances of a role replaced by a new build one at
//! a time, each only once the one before is linked with its peers again.
//!
//! Whether two builds can link is the instances' own business (they compare
//! their channels' records at every handshake: docs/DEPLOYMENT.md,
//! "Upgrades"); the upgrade only waits for the new instance to say it is
//! linked with an instance of every role it exchanges records with. One that
//! does not within the time given (its peers refuse its build, or it fails)
//! is put back on the build it ran, and the upgrade stops there, saying why.

use crate::error::DeployError;
use crate::running::{last_line, RunningDeployment};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How long a replaced instance has to drain and exit after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

impl RunningDeployment {
    /// Replaces every instance of `role` by `binary` (a role binary of the
    /// new build), in index order: stops one (SIGTERM: it drains and exits),
    /// starts the new binary in its place (same index, flags and key), and
    /// waits up to `within` until it is linked with an instance of every
    /// role it exchanges records with; then the next. Over SSH hosts the new
    /// binary is uploaded first.
    ///
    /// At the first instance that does not get there, that instance is
    /// started again from the binary it ran before, and the upgrade stops
    /// with an error naming it and the reason (its peers' refusal, say):
    /// the instances not reached run their old build throughout. Meanwhile
    /// the rest of the deployment goes on: the roles that exchange records
    /// with `role` must tolerate losing an instance of it (a fail-stop peer
    /// fails when its instance stops, as it would in any restart).
    pub async fn upgrade(
        &mut self,
        role: &str,
        binary: &Path,
        within: Duration,
    ) -> Result<(), DeployError> {
        if !binary.is_file() {
            return Err(DeployError::new(format!(
                "cannot upgrade role `{role}` to {}: no such file",
                binary.display()
            )));
        }
        let instances: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].role == role)
            .collect();
        if instances.is_empty() {
            return Err(DeployError::new(format!(
                "cannot upgrade role `{role}`: this deployment has no such role"
            )));
        }
        for (done, &i) in instances.iter().enumerate() {
            let old = self.instances[i].binary.clone();
            let Err(why) = self.replace(i, binary, within).await else {
                self.say(&format!(
                    "{} runs {} ({} of {})",
                    self.instances[i].name,
                    binary.display(),
                    done + 1,
                    instances.len()
                ));
                continue;
            };
            let name = self.instances[i].name.clone();
            let back = self.replace(i, &old, within).await;
            // `those` named in `text` (at `{}`), or nothing if there are none.
            let say = |those: &[usize], text: &str| match those {
                [] => String::new(),
                _ => {
                    let names: Vec<&str> = those
                        .iter()
                        .map(|&j| self.instances[j].name.as_str())
                        .collect();
                    text.replace("{}", &names.join(", "))
                }
            };
            let rest = say(&instances[done + 1..], ", as do {}");
            let new = say(&instances[..done], " ({} run the new build)");
            return Err(DeployError::new(match back {
                Ok(()) => format!(
                    "upgrade of role `{role}` stopped at {name}: {why}; {name} runs its old build again{rest}{new}"
                ),
                Err(back) => format!(
                    "upgrade of role `{role}` stopped at {name}: {why}; starting its old build again failed too: {back}{new}"
                ),
            }));
        }
        Ok(())
    }

    /// Stops instance `i`, starts `binary` in its place, and waits until it
    /// says it is linked; why not, if it does not within `within`.
    async fn replace(&mut self, i: usize, binary: &Path, within: Duration) -> Result<(), String> {
        if let Some(failure) = &self.failure {
            return Err(format!("the deployment has failed: {failure}"));
        }
        self.replacing = Some(i);
        let outcome = self.stop_and_start(i, binary, within).await;
        self.replacing = None;
        outcome
    }

    async fn stop_and_start(
        &mut self,
        i: usize,
        binary: &Path,
        within: Duration,
    ) -> Result<(), String> {
        let name = self.instances[i].name.clone();
        if self.instances[i].pid.is_some() {
            self.signal(&name, libc::SIGTERM)
                .map_err(|e| e.to_string())?;
            let drained = Instant::now() + DRAIN;
            while self.instances[i].pid.is_some() {
                if self.listen_until(drained).await {
                    self.signal(&name, libc::SIGKILL)
                        .map_err(|e| e.to_string())?;
                    while self.instances[i].pid.is_some() {
                        self.listen_until(Instant::now() + DRAIN).await;
                    }
                }
            }
        }
        if let Some(host) = self.instances[i].host.clone() {
            host.upload_binary(binary)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.instances[i].binary = binary.to_path_buf();
        self.replaced_exit = None;
        *self.instances[i]
            .last_warning
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.spawn(i).map_err(|e| e.to_string())?;
        let until = Instant::now() + within;
        loop {
            if let Some(exit) = self.replaced_exit.take() {
                return Err(exit);
            }
            if let Some(Ok(())) = self.instances[i].linked {
                return Ok(());
            }
            if self.listen_until(until).await {
                let unlinked = match &self.instances[i].linked {
                    Some(Err(why)) => format!(" ({why})"),
                    _ => String::new(),
                };
                let warning = last_line(&self.instances[i].last_warning, "; its last warning: ");
                return Err(format!(
                    "it was not linked with its peers within {within:?}{unlinked}{warning}"
                ));
            }
        }
    }
}
