//! The `faultline` binary: parses arguments and maps outcomes to exit codes (0 ok, 1 failed, 2 invalid input).

mod cli;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                cli::EXIT_INVALID
            } else {
                cli::EXIT_OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(cli::execute(cli));
}
