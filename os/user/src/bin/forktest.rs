//! Forks three children that exit with codes 10, 11, 12; the parent waits
//! for each in order and exits with the sum of their codes.
#![no_std]
#![no_main]

use user::{exit, fork, getpid, println, wait};

const CHILDREN: usize = 3;

#[no_mangle]
fn main(_args: &[&str]) -> i32 {
    let mut pids = [0; CHILDREN];
    for (i, pid) in pids.iter_mut().enumerate() {
        match fork() {
            Some(0) => {
                println!("child {i}: pid {}", getpid());
                exit(10 + i as i32);
            }
            Some(child) => *pid = child,
            None => {
                println!("fork failed");
                return 1;
            }
        }
    }
    let mut sum = 0;
    for pid in pids {
        match wait(Some(pid)) {
            Some((got, code)) => {
                println!("parent: child {got} exited with {code}");
                sum += code;
            }
            None => println!("parent: wait for {pid} failed"),
        }
    }
    if wait(None).is_some() {
        println!("parent: wait with no children left succeeded");
    }
    sum
}
