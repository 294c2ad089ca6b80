//! The read-only file table: the user programs (`os/user/src/bin/`),
//! embedded at build time from `USER_BIN_DIR` and addressed by path.

macro_rules! program {
    ($name:literal) => {
        (
            concat!("/bin/", $name),
            include_bytes!(concat!(env!("USER_BIN_DIR"), "/", $name)) as &[u8],
        )
    };
}

static FILES: &[(&str, &[u8])] = &[
    program!("hello"),
    program!("fib"),
    program!("forktest"),
    program!("exec"),
    program!("spin"),
    program!("ebreak"),
    program!("fault"),
    program!("ids"),
    program!("exit"),
    program!("uprobed"),
    program!("ubench"),
    program!("threads"),
];

/// The contents of the file at `path`.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
}

/// Every path in the table.
pub fn paths() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(p, _)| *p)
}
