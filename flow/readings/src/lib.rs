//! Sensor readings: a library of the example flows' own. Quoted code in
//! `flow` names its items, so the role binaries' package (`bins`) depends on
//! it too, as the build helper asks of any crate that quoted code uses.

use serde::{Deserialize, Serialize};

/// How many sensors report.
pub const SENSORS: u32 = 4;

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: u32,
    pub celsius: f64,
}

/// The `n`th reading of a fixed, made-up series: sensors in turn, each a
/// little warmer than the last time.
pub fn sample(n: u64) -> Reading {
    Reading {
        sensor: (n % u64::from(SENSORS)) as u32,
        celsius: 15.0 + (n / u64::from(SENSORS)) as f64 * 0.5 + (n % 3) as f64,
    }
}

/// Degrees Fahrenheit.
pub fn fahrenheit(celsius: f64) -> f64 {
    celsius * 9.0 / 5.0 + 32.0
}

/// Units a reading can be shown in.
pub mod units {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Scale {
        Celsius,
        Fahrenheit,
    }

    impl Scale {
        /// `value` (in degrees Celsius) in this scale, rounded to a tenth.
        pub fn show(self, celsius: f64) -> String {
            let value = match self {
                Scale::Celsius => celsius,
                Scale::Fahrenheit => super::fahrenheit(celsius),
            };
            format!("{value:.1}")
        }
    }
}
