//! Trains an MLP 64-32-10 on the UCI handwritten digits with this crate's
//! AdamW, and compares the loss with torch's for the same run.
//!
//! On the host:
//!
//! ```text
//! cargo run --release --example digits
//! DIGITS_EPOCHS=3 cargo run --release --example digits
//! ```
//!
//! On a Cortex-M4F under QEMU (the runner in `.cargo/config.toml` starts
//! `qemu-system-arm -M mps2-an386` with semihosting), where `DIGITS_EPOCHS`
//! is read when the program is compiled:
//!
//! ```text
//! cargo run --release --example digits --target thumbv7em-none-eabihf
//! ```
//!
//! `thumbv8m.main-none-eabihf` (Cortex-M33) and
//! `riscv32imac-unknown-none-elf` run the same way. Every target prints the
//! same report from the same code in `train.rs`, apart from the target's
//! name and the optimizer's size, and ends with the same digest of the final
//! weights.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

mod data;
mod model;
mod train;

/// Parses an epoch count, `None` for anything but a whole number.
fn parse_epochs(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;

    let epochs = match std::env::var("DIGITS_EPOCHS") {
        Ok(text) => match parse_epochs(&text) {
            Some(epochs) => epochs,
            None => {
                eprintln!("invalid DIGITS_EPOCHS {text:?}: expected a whole number of epochs");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => train::EPOCHS,
    };

    println!("target: host, AdamW backend: {}", adamw::backend());
    let start = std::time::Instant::now();
    if let Err(e) = train::run(epochs, &mut Stdout) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("time: {:.2} s", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// `print!` as a `fmt::Write`. The standard output is line-buffered, so the
/// report shows epoch by epoch.
#[cfg(not(target_os = "none"))]
struct Stdout;

#[cfg(not(target_os = "none"))]
impl core::fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        print!("{s}");
        Ok(())
    }
}

#[cfg(target_os = "none")]
mod bare_metal {
    use semihosting::process::exit;

    use crate::{parse_epochs, train};

    /// Runs the training and returns the exit status.
    fn run() -> i32 {
        let Some(epochs) = option_env!("DIGITS_EPOCHS").map_or(Some(train::EPOCHS), parse_epochs)
        else {
            semihosting::eprintln!(
                "invalid DIGITS_EPOCHS at compile time: expected a whole number of epochs"
            );
            return 2;
        };

        semihosting::println!("target: bare metal, AdamW backend: {}", adamw::backend());
        match train::run(epochs, &mut Stdout) {
            Ok(()) => 0,
            Err(e) => {
                semihosting::eprintln!("{e}");
                1
            }
        }
    }

    /// `semihosting::print!` as a `fmt::Write`.
    struct Stdout;

    impl core::fmt::Write for Stdout {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            semihosting::print!("{s}");
            Ok(())
        }
    }

    #[cfg(target_arch = "arm")]
    #[cortex_m_rt::entry]
    fn main() -> ! {
        exit(run())
    }

    // A fault exits QEMU with a failure status instead of spinning forever.
    #[cfg(target_arch = "arm")]
    #[cortex_m_rt::exception]
    unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
        semihosting::eprintln!("HardFault at pc {:#010x}", frame.pc());
        exit(3)
    }

    #[cfg(target_arch = "riscv32")]
    #[riscv_rt::entry]
    fn main() -> ! {
        exit(run())
    }

    // riscv-rt sends every exception and interrupt without its own handler
    // to `abort`.
    #[cfg(target_arch = "riscv32")]
    #[unsafe(no_mangle)]
    extern "C" fn abort() -> ! {
        semihosting::eprintln!("trap: unexpected exception");
        exit(3)
    }
}
