//! Monte Carlo estimate of π. Every worker draws random points each tick and
//! counts those inside the unit circle; the leader sums all workers' counts over
//! the whole run and prints the estimate every second. Runs until stopped.

use weir::*;

/// Points each worker draws per tick.
pub const POINTS_PER_TICK: usize = 8192;

pub fn compute_pi(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.spin_batch(&workers, q!(POINTS_PER_TICK))
        .map(q!({
            let mut rng = Rng::seeded(u64::from(workers.self_id().0));
            move |()| rng.point()
        }))
        .fold(
            q!(|| (0u64, 0u64)),
            q!(|(inside, total), (x, y)| {
                if x * x + y * y <= 1.0 {
                    *inside += 1;
                }
                *total += 1;
            }),
        )
        .all_ticks()
        .send_bincode_interleaved(&leader)
        // Sums: the workers' tallies may come in any order.
        .reduce_commutative(q!(|(inside, total), (i, t)| {
            *inside += i;
            *total += t;
        }))
        .sample_every(q!(std::time::Duration::from_secs(1)))
        .for_each(q!(|(inside, total)| {
            println!(
                "pi: {:.5} ({total} trials)",
                4.0 * inside as f64 / total as f64
            )
        }));
}

/// A small xorshift generator: enough for sampling, and no dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` and the clock, so members differ.
    pub fn seeded(seed: u64) -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((seed.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A point drawn uniformly from the unit square.
    pub fn point(&mut self) -> (f64, f64) {
        let unit = |v: u64| (v >> 11) as f64 / (1u64 << 53) as f64;
        (unit(self.next_u64()), unit(self.next_u64()))
    }
}
