use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_frames: 100,
        max_bytes: 10 * 1024 * 1024,
        seq_block: 4,
        quarantine_after_read_errors: 3,
    }
}

fn outgoing(tag: u8) -> Outgoing {
    Outgoing {
        captured_at: DateTime::<Utc>::from_timestamp_millis(1_763_900_000_000 + tag as i64)
            .unwrap(),
        jpeg: vec![0xFF, 0xD8, tag, 0xFF, 0xD9],
        measurements: Vec::new(),
    }
}

fn open(config: &SpoolConfig) -> Spool {
    Spool::open(config, Arc::new(Counters::default())).unwrap()
}

#[test]
fn frames_survive_a_restart_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut spool = open(&config);
    let a = spool.push(&outgoing(1)).unwrap();
    let b = spool.push(&outgoing(2)).unwrap();
    assert!(spool.remove(a).unwrap());
    drop(spool);
    let mut spool = open(&config);
    assert_eq!(spool.seqs_after(None, 10), [b]);
    assert_eq!(spool.read(b).unwrap().unwrap().jpeg, outgoing(2).jpeg);
    assert_eq!(spool.read(a).unwrap(), None);
}

#[test]
fn seq_never_repeats_after_a_crash_even_with_nothing_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut seen = Vec::new();
    for _ in 0..3 {
        // Each "run" takes a few seqs, acks them all, then stops without a goodbye.
        let mut spool = open(&config);
        for tag in 0..6 {
            let seq = spool.push(&outgoing(tag)).unwrap();
            spool.remove(seq).unwrap();
            seen.push(seq);
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "repeated seq in {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_frames: 3,
        ..config(dir.path())
    };
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    let seqs: Vec<u64> = (0..5).map(|t| spool.push(&outgoing(t)).unwrap()).collect();
    assert_eq!(spool.seqs_after(None, 10), seqs[2..]);
    assert_eq!(counters.snapshot()["spool_dropped"], 2);
    assert_eq!(spool.depth(), 3);
    assert_eq!(
        std::fs::read_dir(dir.path().join("frames"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn the_byte_limit_holds_too() {
    let dir = tempfile::tempdir().unwrap();
    let one = record::encode(&SpooledFrame {
        seq: 0,
        captured_at: outgoing(0).captured_at,
        measurements: Vec::new(),
        jpeg: outgoing(0).jpeg,
    })
    .len() as u64;
    let config = SpoolConfig {
        max_bytes: 2 * one + 1,
        ..config(dir.path())
    };
    let mut spool = open(&config);
    for tag in 0..4 {
        spool.push(&outgoing(tag)).unwrap();
    }
    assert_eq!(spool.depth(), 2);
    assert!(spool.bytes() <= config.max_bytes);
}

#[test]
fn leftovers_of_a_crash_are_cleaned_and_damage_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut spool = open(&config);
    let good = spool.push(&outgoing(1)).unwrap();
    let bad = spool.push(&outgoing(2)).unwrap();
    drop(spool);
    let frames = dir.path().join("frames");
    std::fs::write(frames.join(".99.tmp"), b"half a frame").unwrap();
    std::fs::write(frames.join(format!("{bad:020}.frame")), b"garbage").unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    assert!(!frames.join(".99.tmp").exists());
    assert!(spool.read(good).unwrap().is_some());
    assert_eq!(spool.read(bad).unwrap(), None);
    assert_eq!(counters.snapshot()["spool_corrupt"], 1);
    assert_eq!(spool.seqs_after(None, 10), [good]);
}

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    /// Ack the n-th oldest frame (modulo the depth).
    Ack(usize),
    /// Drop the spool without any shutdown and open it again.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Push),
        3 => any::<usize>().prop_map(Op::Ack),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The spool behaves like a bounded queue that survives restarts, and
    /// hands out strictly increasing seqs across all of them.
    #[test]
    fn behaves_like_a_bounded_queue_across_restarts(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_frames: 8, seq_block: 3, ..config(dir.path()) };
        let mut spool = open(&config);
        let mut model: VecDeque<(u64, u8)> = VecDeque::new();
        let mut last_seq: Option<u64> = None;
        for op in ops {
            match op {
                Op::Push(tag) => {
                    let seq = spool.push(&outgoing(tag)).unwrap();
                    prop_assert!(last_seq.is_none_or(|last| seq > last));
                    last_seq = Some(seq);
                    if model.len() == config.max_frames {
                        model.pop_front();
                    }
                    model.push_back((seq, tag));
                }
                Op::Ack(n) => {
                    if !model.is_empty() {
                        let (seq, _) = model.remove(n % model.len()).unwrap();
                        prop_assert!(spool.remove(seq).unwrap());
                    }
                }
                Op::Restart => spool = open(&config),
            }
            let seqs: Vec<u64> = model.iter().map(|(s, _)| *s).collect();
            prop_assert_eq!(spool.seqs_after(None, usize::MAX), seqs);
        }
        for (seq, tag) in model {
            prop_assert_eq!(spool.read(seq).unwrap().unwrap().jpeg, outgoing(tag).jpeg);
        }
    }
}

#[test]
fn a_failed_write_pushes_nothing_out_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_frames: 2,
        ..config(dir.path())
    };
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    let kept: Vec<u64> = (0..2).map(|t| spool.push(&outgoing(t)).unwrap()).collect();
    // The next write hits a full disk: its temp file is /dev/full (ENOSPC on
    // write, for root too).
    let tmp = dir
        .path()
        .join("frames")
        .join(format!(".{}.tmp", spool.next_seq()));
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();

    let error = spool.push(&outgoing(9)).unwrap_err();
    assert!(matches!(error, SpoolError::Io { .. }), "{error}");
    assert_eq!(spool.seqs_after(None, 10), kept, "nothing pushed out");
    for (seq, tag) in kept.iter().zip(0..) {
        assert_eq!(spool.read(*seq).unwrap().unwrap().jpeg, outgoing(tag).jpeg);
    }
    assert_eq!(counters.snapshot()["spool_dropped"], 0);
    assert!(
        std::fs::symlink_metadata(&tmp).is_err(),
        "the failed write's temp file is gone"
    );

    // The disk has room again: the next frame pushes out the oldest.
    let next = spool.push(&outgoing(10)).unwrap();
    assert_eq!(spool.seqs_after(None, 10), [kept[1], next]);
    assert_eq!(counters.snapshot()["spool_dropped"], 1);
}

#[test]
fn a_record_that_keeps_failing_to_read_is_quarantined_and_the_queue_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        quarantine_after_read_errors: 3,
        ..config(dir.path())
    };
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    let stuck = spool.push(&outgoing(1)).unwrap();
    let next = spool.push(&outgoing(2)).unwrap();
    // An EIO stand-in that also fails for root (where `chmod 000` does not
    // stop reads): a directory where the frame file was.
    let path = dir.path().join("frames").join(format!("{stuck:020}.frame"));
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();

    for _ in 0..2 {
        assert!(matches!(spool.read(stuck), Err(SpoolError::Io { .. })));
        assert_eq!(spool.seqs_after(None, 10), [stuck, next]);
    }
    // The third failure sets it aside, counted; the head is the next frame.
    assert_eq!(spool.read(stuck).unwrap(), None);
    assert_eq!(counters.snapshot()["spool_quarantined"], 1);
    assert_eq!(spool.seqs_after(None, 10), [next]);
    assert!(!path.exists());
    assert!(
        dir.path()
            .join("quarantine")
            .join(format!("{stuck:020}.frame"))
            .exists(),
        "moved aside, not deleted"
    );
    assert_eq!(spool.read(next).unwrap().unwrap().jpeg, outgoing(2).jpeg);
    // And it stays out after a restart.
    drop(spool);
    assert_eq!(open(&config).seqs_after(None, 10), [next]);
}

#[test]
fn a_read_that_recovers_starts_its_count_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        quarantine_after_read_errors: 2,
        ..config(dir.path())
    };
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    let seq = spool.push(&outgoing(1)).unwrap();
    let path = dir.path().join("frames").join(format!("{seq:020}.frame"));
    let bytes = std::fs::read(&path).unwrap();
    for _ in 0..3 {
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(spool.read(seq).is_err());
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert!(spool.read(seq).unwrap().is_some());
    }
    assert_eq!(counters.snapshot()["spool_quarantined"], 0);
}

#[test]
fn the_next_seq_is_raised_above_a_floor_durably_and_never_lowered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut spool = open(&config);
    assert_eq!(spool.push(&outgoing(0)).unwrap(), 0);
    assert!(spool.raise_next_seq(500).unwrap());
    assert_eq!(spool.push(&outgoing(1)).unwrap(), 500);
    assert!(!spool.raise_next_seq(100).unwrap());
    assert!(!spool.raise_next_seq(501).unwrap());
    assert_eq!(spool.push(&outgoing(2)).unwrap(), 501);
    // Raised with nothing pushed after it, then a crash: still raised.
    assert!(spool.raise_next_seq(10_000).unwrap());
    drop(spool);
    let mut spool = open(&config);
    assert!(spool.next_seq() >= 10_000, "{}", spool.next_seq());
    assert!(spool.push(&outgoing(3)).unwrap() >= 10_000);
    assert_eq!(spool.seqs_after(None, 2), [0, 500]);
}

#[test]
fn a_renumbered_frame_keeps_its_content_under_a_new_seq_above_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_frames: 2,
        ..config(dir.path())
    };
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&config, counters.clone()).unwrap();
    let a = spool.push(&outgoing(1)).unwrap();
    let b = spool.push(&outgoing(2)).unwrap();
    spool.raise_next_seq(100).unwrap();

    let moved = spool.renumber(a).unwrap().unwrap();
    assert_eq!(moved, 100);
    // A full spool: the move pushed nothing out.
    assert_eq!(spool.seqs_after(None, 10), [b, moved]);
    assert_eq!(counters.snapshot()["spool_dropped"], 0);
    assert_eq!(counters.snapshot()["renumbered"], 1);
    let frame = spool.read(moved).unwrap().unwrap();
    assert_eq!(frame.seq, moved);
    assert_eq!(frame.jpeg, outgoing(1).jpeg);
    assert_eq!(frame.captured_at, outgoing(1).captured_at);
    assert!(
        !dir.path()
            .join("frames")
            .join(format!("{a:020}.frame"))
            .exists()
    );
    assert_eq!(spool.renumber(a).unwrap(), None);
    drop(spool);
    let mut spool = open(&config);
    assert_eq!(spool.seqs_after(None, 10), [b, moved]);
    assert!(spool.push(&outgoing(3)).unwrap() > moved);
}
