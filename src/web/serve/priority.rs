//! Jobs run below the requests. A job computes on every core; a request that wakes up behind
//! it waits for a time slice, and under a burst of polls the slowest answers wait longest. So
//! the threads that run jobs, and the compute pool they share, are [`JOB_NICENESS`] nicer than
//! the server: a request gets a core as soon as it needs one, and on an otherwise idle machine
//! a job still has every core.

/// How much nicer than the server the threads that run jobs are.
pub const JOB_NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`JOB_NICENESS`] (on Linux the nice value belongs
/// to each thread). Best effort: where the system refuses, the job runs at the server's
/// priority, as it would without this.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + JOB_NICENESS).min(19));
    }
}

/// Builds the compute pool the jobs share with [`lower_this_thread`] on each of its threads.
/// Returns false if the pool already existed (then its threads keep their priority).
pub fn lower_the_compute_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .start_handler(|_| lower_this_thread())
        .build_global()
        .is_ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn this_thread_nice() -> i32 {
        // SAFETY: a plain system call on the calling thread's own id.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn a_lowered_thread_is_nicer_and_the_others_are_not() {
        let before = this_thread_nice();
        let lowered = std::thread::spawn(|| {
            lower_this_thread();
            this_thread_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + JOB_NICENESS).min(19));
        assert_eq!(this_thread_nice(), before, "only the calling thread");
    }
}
