//! `wasi:cli`: environment, exit, the standard streams and (no) terminals.

use alloc::string::String;
use alloc::vec::Vec;

use crate::exports::wasi::cli::terminal_input::{Guest as TerminalInputGuest, GuestTerminalInput};
use crate::exports::wasi::cli::terminal_output::{
    Guest as TerminalOutputGuest, GuestTerminalOutput,
};
use crate::exports::wasi::cli::{
    environment, exit, stderr, stdin, stdout, terminal_stderr, terminal_stdin, terminal_stdout,
};
use crate::exports::wasi::io::streams::{InputStream, OutputStream};
use crate::streams;
use crate::weft::devices::exit as weft_exit;
use crate::{WasiOnWeft, with_setup};

impl environment::Guest for WasiOnWeft {
    fn get_environment() -> Vec<(String, String)> {
        with_setup(|s| s.env.clone())
    }

    fn get_arguments() -> Vec<String> {
        with_setup(|s| s.args.clone())
    }

    fn initial_cwd() -> Option<String> {
        with_setup(|s| s.cwd.clone())
    }
}

/// The exit code for WASI's `exit(status)`.
pub fn exit_code(status: Result<(), ()>) -> u8 {
    match status {
        Ok(()) => 0,
        Err(()) => 1,
    }
}

/// End the run through weft's `exit`, which never returns.
fn end_run(code: u8) -> ! {
    // Nothing calls `shutdown` after an exit: the files first.
    crate::fs::shutdown();
    weft_exit::exit(code);
    // The device contract says `exit` does not return; a host that breaks it gets a trap
    // rather than a program running on past its own exit.
    unreachable!("weft:devices/exit.exit returned")
}

impl exit::Guest for WasiOnWeft {
    fn exit(status: Result<(), ()>) {
        end_run(exit_code(status))
    }

    fn exit_with_code(status_code: u8) {
        end_run(status_code)
    }
}

impl stdin::Guest for WasiOnWeft {
    fn get_stdin() -> InputStream {
        streams::stdin()
    }
}

impl stdout::Guest for WasiOnWeft {
    fn get_stdout() -> OutputStream {
        streams::console()
    }
}

impl stderr::Guest for WasiOnWeft {
    /// The console is the one stream for humans; errors go there too.
    fn get_stderr() -> OutputStream {
        streams::console()
    }
}

/// A terminal. None is ever handed out (no standard stream is a terminal), but the
/// resource types must exist.
pub enum NoTerminal {}

impl GuestTerminalInput for NoTerminal {}
impl GuestTerminalOutput for NoTerminal {}

impl TerminalInputGuest for WasiOnWeft {
    type TerminalInput = NoTerminal;
}

impl TerminalOutputGuest for WasiOnWeft {
    type TerminalOutput = NoTerminal;
}

impl terminal_stdin::Guest for WasiOnWeft {
    fn get_terminal_stdin() -> Option<terminal_stdin::TerminalInput> {
        None
    }
}

impl terminal_stdout::Guest for WasiOnWeft {
    fn get_terminal_stdout() -> Option<terminal_stdout::TerminalOutput> {
        None
    }
}

impl terminal_stderr::Guest for WasiOnWeft {
    fn get_terminal_stderr() -> Option<terminal_stderr::TerminalOutput> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(Ok(())), 0);
        assert_eq!(exit_code(Err(())), 1);
    }
}
