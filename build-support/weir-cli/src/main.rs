//! `weir`: the command-line companion of the Weir crates. `weir new DIR`
//! starts a project shaped like Weir's own: a flow crate, a bins crate whose
//! build.rs generates the role binaries, a deploy script and a test.

mod new_project;

use clap::{Arg, ArgGroup, Command};
use new_project::{NewProject, WeirSource};
use std::path::PathBuf;
use std::process::ExitCode;

fn cli() -> Command {
    Command::new("weir")
        .about("Weir: typed dataflow programs compiled into one binary per role")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("new")
                .about("Create a Weir project in DIR (which must not exist or be empty)")
                .arg(Arg::new("dir").value_name("DIR").required(true))
                .arg(
                    Arg::new("name")
                        .long("name")
                        .value_name("NAME")
                        .help("Package name prefix (default: DIR's last component)"),
                )
                .arg(
                    Arg::new("weir-path")
                        .long("weir-path")
                        .value_name("CHECKOUT")
                        .help("Take the Weir crates from this checkout (default: the one this `weir` was built from)"),
                )
                .arg(
                    Arg::new("weir-git")
                        .long("weir-git")
                        .value_name("URL")
                        .help("Take the Weir crates from this git repository"),
                )
                .group(ArgGroup::new("source").args(["weir-path", "weir-git"])),
        )
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let outcome = match matches.subcommand() {
        Some(("new", args)) => {
            let dir = PathBuf::from(args.get_one::<String>("dir").expect("required"));
            let source = match (
                args.get_one::<String>("weir-path"),
                args.get_one::<String>("weir-git"),
            ) {
                (_, Some(url)) => WeirSource::Git(url.clone()),
                (Some(path), None) => WeirSource::Path(PathBuf::from(path)),
                (None, None) => WeirSource::built_from(),
            };
            NewProject::new(dir, args.get_one::<String>("name").cloned(), source)
                .and_then(|project| project.write())
        }
        _ => unreachable!("clap requires a subcommand"),
    };
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
