//! The `faultline` binary: parses arguments and maps outcomes to exit codes (0 ok, 1 failed, 2 invalid input).

use clap::Parser;

fn main() {
    let cli = match faultline::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                faultline::cli::EXIT_INVALID
            } else {
                faultline::cli::EXIT_OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(faultline::cli::execute(cli));
}
