//! Running a child process with stdout and stderr merged into one stream,
//! echoed live line by line, captured, and optionally under a timeout.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited by itself with this status.
    Exited(i32),
    /// It was ended by a signal it did not ask for (not by us).
    Signaled,
    /// It outlived its time limit and was killed.
    TimedOut(Duration),
}

impl Termination {
    pub fn success(self) -> bool {
        self == Termination::Exited(0)
    }

    /// The status this process should hand on to its own caller.
    pub fn exit_code(self) -> i32 {
        match self {
            Termination::Exited(code) => code,
            Termination::Signaled => 1,
            // Same convention as coreutils timeout(1).
            Termination::TimedOut(_) => 124,
        }
    }
}

/// Everything a finished child printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Captured {
    /// stdout and stderr merged, in the order the child wrote them,
    /// with `\r\n` normalised to `\n`.
    pub output: String,
    pub termination: Termination,
}

/// Runs `cmd` with stdin from /dev/null and stdout+stderr merged into one
/// pipe. Each line is appended to the capture and, when `echo` is set,
/// written to our stdout as soon as it arrives. With a `timeout`, the child
/// is killed once it has run that long.
pub fn run_captured(mut cmd: Command, timeout: Option<Duration>, echo: bool) -> Result<Captured> {
    let (reader, writer) = std::io::pipe().context("creating output pipe")?;
    let writer_err = writer.try_clone().context("duplicating output pipe")?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_err));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{program}`"))?;
    // `cmd` holds our copies of the write end; drop them so the reader sees
    // end-of-file once the child (and its children) close theirs.
    drop(cmd);

    let (tx, rx) = mpsc::channel::<String>();
    let reader_thread = thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let start = Instant::now();
    let deadline = timeout.map(|t| start + t);
    let mut output = String::new();
    let mut record = |line: String| {
        if echo {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        output.push_str(&line);
        output.push('\n');
    };

    let mut timed_out = false;
    loop {
        let received = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    break;
                }
                rx.recv_timeout(left)
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(line) => record(line),
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    let termination = if timed_out {
        kill(&mut child);
        Termination::TimedOut(timeout.unwrap_or_default())
    } else {
        wait_until(&mut child, deadline, timeout)?
    };

    // Collect whatever was still in flight. The reader ends once every
    // holder of the write end is gone; don't wait forever on a stray
    // grandchild that kept it.
    let grace = Instant::now() + Duration::from_secs(2);
    loop {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => record(line),
            Err(_) => break,
        }
    }
    if reader_thread.is_finished() {
        let _ = reader_thread.join();
    }

    Ok(Captured {
        output,
        termination,
    })
}

/// Waits for a child whose output is closed, still honouring the deadline.
fn wait_until(
    child: &mut Child,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<Termination> {
    loop {
        if let Some(status) = child.try_wait().context("waiting for child")? {
            return Ok(match status.code() {
                Some(code) => Termination::Exited(code),
                None => Termination::Signaled,
            });
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill(child);
            return Ok(Termination::TimedOut(timeout.unwrap_or_default()));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command to completion with inherited stdio; errors on non-zero.
pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("starting `{shown}`"))?;
    anyhow::ensure!(status.success(), "`{shown}` failed with {status}");
    Ok(())
}

/// A command as a person would type it, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_streams_and_reports_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; printf 'tail'; exit 7"]);
        let cap = run_captured(cmd, Some(Duration::from_secs(10)), false).unwrap();
        assert_eq!(cap.termination, Termination::Exited(7));
        assert!(cap.output.contains("out\n"));
        assert!(cap.output.contains("err\n"));
        assert!(cap.output.ends_with("tail\n"));
    }

    #[test]
    fn kills_on_timeout_and_keeps_partial_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let t0 = Instant::now();
        let cap = run_captured(cmd, Some(Duration::from_millis(500)), false).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(matches!(cap.termination, Termination::TimedOut(_)));
        assert_eq!(cap.termination.exit_code(), 124);
        assert_eq!(cap.output, "started\n");
    }
}
