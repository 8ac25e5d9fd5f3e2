use crate::*;
use proptest::prelude::*;

type Rec = (u32, String);

fn rec(n: u32) -> Rec {
    (n, format!("record {n}"))
}

fn open_log(disk: &MemoryDisk, durability: Durability) -> (Storage, Log<Rec>, Vec<Rec>) {
    let storage = Storage::on(disk.clone(), durability);
    let (log, records) = Log::open(&storage, "events").unwrap();
    (storage, log, records)
}

/// `commits` commits of `per` records each, numbered from 0; the file's
/// length after each.
fn write_commits(disk: &MemoryDisk, commits: u32, per: u32) -> Vec<usize> {
    let (storage, mut log, _) = open_log(disk, Durability::Sync);
    let mut ends = Vec::new();
    for c in 0..commits {
        for r in 0..per {
            log.append(&rec(c * per + r));
        }
        storage.commit().unwrap();
        ends.push(disk.contents("events.log").unwrap().len());
    }
    ends
}

#[test]
fn records_come_back_in_order_across_commits_and_runs() {
    let disk = MemoryDisk::new();
    write_commits(&disk, 3, 2);
    let (storage, mut log, records) = open_log(&disk, Durability::Sync);
    assert_eq!(records, (0..6).map(rec).collect::<Vec<_>>());
    log.append(&rec(6));
    assert!(storage.has_pending());
    storage.commit().unwrap();
    assert!(!storage.has_pending());
    let (_, _, records) = open_log(&disk, Durability::Sync);
    assert_eq!(records, (0..7).map(rec).collect::<Vec<_>>());
}

#[test]
fn a_commit_torn_at_any_byte_is_dropped_whole_with_a_warning() {
    let disk = MemoryDisk::new();
    let ends = write_commits(&disk, 3, 3);
    let whole = disk.contents("events.log").unwrap();
    for cut in ends[1]..ends[2] {
        let torn = MemoryDisk::new();
        torn.put("events.log", whole[..cut].to_vec());
        let (storage, _, records) = open_log(&torn, Durability::Sync);
        assert_eq!(records, (0..6).map(rec).collect::<Vec<_>>(), "cut at {cut}");
        let warnings = storage.take_warnings();
        if cut == ends[1] {
            assert!(warnings.is_empty(), "{warnings:?}");
            continue;
        }
        assert_eq!(warnings.len(), 1, "cut at {cut}");
        let said = format!("from byte {}", ends[1]);
        assert!(
            warnings[0].contains("events.log") && warnings[0].contains(&said),
            "{warnings:?}"
        );
        // The torn tail is cut from the file: the next commit follows the last whole one.
        assert_eq!(
            torn.contents("events.log").unwrap(),
            whole[..ends[1]].to_vec()
        );
    }
}

#[test]
fn zeros_where_the_last_commit_was_being_written_are_a_torn_tail() {
    let disk = MemoryDisk::new();
    let ends = write_commits(&disk, 2, 2);
    let mut bytes = disk.contents("events.log").unwrap();
    bytes.truncate(ends[0]);
    bytes.extend(std::iter::repeat_n(0, 40));
    disk.put("events.log", bytes);
    let (storage, _, records) = open_log(&disk, Durability::Sync);
    assert_eq!(records, (0..2).map(rec).collect::<Vec<_>>());
    assert!(storage.take_warnings()[0].contains("zeros"));
}

#[test]
fn damage_before_the_last_commit_is_an_error_naming_the_file_and_byte() {
    let disk = MemoryDisk::new();
    let ends = write_commits(&disk, 3, 2);
    let bytes = disk.contents("events.log").unwrap();
    // A bit of the second commit's records, then of its length.
    for at in [ends[0] + 20, ends[0] + 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        disk.put("events.log", damaged);
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let err = Log::<Rec>::open(&storage, "events")
            .err()
            .expect("damage was read");
        let text = err.to_string();
        assert!(
            text.contains("events.log") && text.contains(&format!("at byte {}", ends[0])),
            "{text}"
        );
    }
}

#[test]
fn records_of_another_type_are_an_error_naming_the_type() {
    let disk = MemoryDisk::new();
    write_commits(&disk, 1, 1);
    // As from before shapes were kept beside the state (else the shapes
    // are told apart first).
    disk.put("events.log.shape", Vec::new());
    let storage = Storage::on(disk.clone(), Durability::Sync);
    let err = Log::<(u64, u64, u64, u64)>::open(&storage, "events")
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("do not read as `(u64, u64, u64, u64)`"),
        "{err}"
    );
}

#[test]
fn compaction_replaces_the_log_and_keeps_what_is_appended_after_it() {
    let disk = MemoryDisk::new();
    let (storage, mut log, _) = open_log(&disk, Durability::Sync);
    for n in 0..5 {
        log.append(&rec(n));
    }
    storage.commit().unwrap();
    let grown = disk.contents("events.log").unwrap().len();
    log.append(&rec(5));
    log.compact(&[rec(100)]);
    log.append(&rec(6));
    storage.commit().unwrap();
    assert!(disk.contents("events.log").unwrap().len() < grown);
    let (_, _, records) = open_log(&disk, Durability::Sync);
    assert_eq!(records, vec![rec(100), rec(6)]);
}

#[test]
fn a_log_is_worth_compacting_once_as_much_was_appended_as_its_last_compaction_wrote() {
    let disk = MemoryDisk::new();
    let (storage, mut log, _) = open_log(&disk, Durability::Sync);
    assert!(log.worth_compacting(), "an empty log");
    let state: Vec<Rec> = (0..100).map(rec).collect();
    log.compact(&state);
    storage.commit().unwrap();
    let written = disk.contents("events.log").unwrap().len();
    let mut appended = 0;
    let mut n = 1000;
    while !log.worth_compacting() {
        let before = disk.contents("events.log").unwrap().len();
        for _ in 0..10 {
            log.append(&rec(n));
            n += 1;
        }
        storage.commit().unwrap();
        appended += disk.contents("events.log").unwrap().len() - before;
    }
    // What the file grew by (records and each commit's frame) reaches what
    // the compaction wrote, and not much more.
    assert!(appended >= written, "{appended} < {written}");
    assert!(appended <= written * 5 / 4, "{appended} vs {written}");
    // A log opened again counts from what it holds.
    drop((log, storage));
    let (_, log, records) = open_log(&disk, Durability::Sync);
    assert_eq!(records.len(), 100 + (n - 1000) as usize);
    assert!(!log.worth_compacting());
}

#[test]
fn a_cell_holds_the_last_value_set_and_damage_is_an_error() {
    let disk = MemoryDisk::new();
    let storage = Storage::on(disk.clone(), Durability::Sync);
    let (mut cell, value) = Cell::<Rec>::open(&storage, "applied").unwrap();
    assert_eq!(value, None);
    cell.set(&rec(1));
    cell.set(&rec(2));
    storage.commit().unwrap();
    let storage = Storage::on(disk.clone(), Durability::Sync);
    assert_eq!(
        Cell::<Rec>::open(&storage, "applied").unwrap().1,
        Some(rec(2))
    );
    let mut bytes = disk.contents("applied.cell").unwrap();
    bytes.pop();
    disk.put("applied.cell", bytes);
    let storage = Storage::on(disk.clone(), Durability::Sync);
    let err = Cell::<Rec>::open(&storage, "applied").err().unwrap();
    assert!(err.to_string().contains("applied.cell: damaged"), "{err}");
}

#[test]
fn a_name_is_opened_once_and_must_be_a_plain_file_name() {
    let storage = Storage::on(MemoryDisk::new(), Durability::Sync);
    Log::<Rec>::open(&storage, "events").unwrap();
    let twice = Log::<Rec>::open(&storage, "events").err().unwrap();
    assert!(twice.to_string().contains("opened twice"), "{twice}");
    let bad = Cell::<Rec>::open(&storage, "../x").err().unwrap();
    assert!(
        bad.to_string().contains("cannot name durable state"),
        "{bad}"
    );
}

#[test]
fn a_state_directory_holds_the_files_and_is_refused_to_a_second_holder() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    {
        let storage = Storage::in_dir(dir, Durability::Sync).unwrap();
        let (mut log, _) = Log::<Rec>::open(&storage, "events").unwrap();
        log.append(&rec(1));
        storage.commit().unwrap();
        log.compact(&[rec(2)]);
        storage.commit().unwrap();
        log.append(&rec(3));
        storage.commit().unwrap();
        let second = Storage::in_dir(dir, Durability::Sync).err().unwrap();
        assert!(
            second.to_string().contains("in use by another process"),
            "{second}"
        );
    }
    // Torn on the real file: cut, and the file is cut to the last whole commit.
    let path = dir.join("events.log");
    let len = std::fs::metadata(&path).unwrap().len();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[7, 0, 0]).unwrap();
    }
    let storage = Storage::in_dir(dir, Durability::Flush).unwrap();
    let (_, records) = Log::<Rec>::open(&storage, "events").unwrap();
    assert_eq!(records, vec![rec(2), rec(3)]);
    assert_eq!(storage.take_warnings().len(), 1);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
}

#[derive(Debug, Clone)]
enum Step {
    Append(u32),
    Compact,
    Commit,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u32>().prop_map(Step::Append),
            1 => Just(Step::Compact),
            2 => Just(Step::Commit),
        ],
        0..40,
    )
}

/// Takes `steps` on `log`: the state as of each commit (the first: empty),
/// and the state of the tick under way.
fn take(steps: &[Step], storage: &Storage, log: &mut Log<Rec>) -> (Vec<Vec<Rec>>, Vec<Rec>) {
    let mut committed: Vec<Vec<Rec>> = vec![Vec::new()];
    let mut now: Vec<Rec> = Vec::new();
    for step in steps {
        match step {
            Step::Append(n) => {
                log.append(&rec(*n));
                now.push(rec(*n));
            }
            Step::Compact => log.compact(&now),
            Step::Commit => {
                storage.commit().unwrap();
                committed.push(now.clone());
            }
        }
    }
    (committed, now)
}

proptest! {
    /// Appends, compactions and commits, then a power loss that tears what
    /// was not synced at any byte: what is read back is the state after
    /// some commit (under `sync`, the last), never anything else.
    #[test]
    fn after_a_power_loss_the_log_reads_back_as_of_a_commit(
        steps in steps(),
        sync in any::<bool>(),
        tear in any::<prop::sample::Index>(),
    ) {
        let durability = if sync { Durability::Sync } else { Durability::Flush };
        let disk = MemoryDisk::new();
        let (storage, mut log, _) = open_log(&disk, durability);
        let (committed, _) = take(&steps, &storage, &mut log);
        disk.power_loss(|_, n| tear.index(n + 1));
        let storage = Storage::on(disk.clone(), durability);
        let (_, records) = Log::<Rec>::open(&storage, "events").unwrap();
        if sync {
            prop_assert_eq!(&records, committed.last().unwrap());
        } else {
            prop_assert!(committed.contains(&records), "{:?} is no committed state", records);
        }
    }

    /// The power goes in the middle of a commit (its sync fails): that
    /// commit and every later one fail, and what is read back on the next
    /// boot is the state of the last commit that succeeded, or of the one
    /// under way if all of it reached the disk; never part of a commit.
    #[test]
    fn a_commit_cut_by_a_power_loss_fails_and_survives_whole_or_not_at_all(
        steps in steps(),
        last in prop::collection::vec(any::<u32>(), 1..4),
        tear in any::<prop::sample::Index>(),
    ) {
        let disk = MemoryDisk::new();
        let (storage, mut log, _) = open_log(&disk, Durability::Sync);
        let (_, mut now) = take(&steps, &storage, &mut log);
        storage.commit().unwrap();
        let before = now.clone();
        for n in &last {
            log.append(&rec(*n));
            now.push(rec(*n));
        }
        disk.lose_power_at_next_sync();
        prop_assert!(storage.commit().is_err());
        prop_assert!(disk.is_down());
        log.append(&rec(0));
        prop_assert!(storage.commit().is_err(), "a commit after a failed one succeeded");
        disk.power_loss(|_, n| tear.index(n + 1));
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let (_, records) = Log::<Rec>::open(&storage, "events").unwrap();
        prop_assert!(records == before || records == now, "{:?} is neither {:?} nor {:?}", records, before, now);
    }

    /// Any bit flipped in a log: it reads back as of a commit (the flip was
    /// in a torn tail) or is refused; never other records.
    #[test]
    fn a_flipped_bit_is_refused_or_cut_never_misread(
        commits in 1u32..5,
        bit in any::<prop::sample::Index>(),
    ) {
        let disk = MemoryDisk::new();
        write_commits(&disk, commits, 3);
        let mut bytes = disk.contents("events.log").unwrap();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        disk.put("events.log", bytes);
        let storage = Storage::on(disk.clone(), Durability::Sync);
        if let Ok((_, records)) = Log::<Rec>::open(&storage, "events") {
            let states: Vec<Vec<Rec>> = (0..=commits).map(|c| (0..c * 3).map(rec).collect()).collect();
            prop_assert!(states.contains(&records), "misread: {:?}", records);
        }
    }
}

/// A build whose records changed does not misread the state an earlier build
/// kept (bincode writes no names): it is refused, naming the file and the
/// first difference. The same shape reads back as ever.
#[test]
fn state_kept_by_a_build_whose_records_differ_is_refused_by_name() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Entry {
        key: u32,
        value: String,
    }
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(rename = "Entry")]
    struct Widened {
        key: u64,
        value: String,
    }
    let disk = MemoryDisk::new();
    {
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let (mut log, _) = Log::<Entry>::open(&storage, "entries").unwrap();
        log.append(&Entry {
            key: 1,
            value: "one".into(),
        });
        let (mut cell, _) = Cell::<Entry>::open(&storage, "last").unwrap();
        cell.set(&Entry {
            key: 1,
            value: "one".into(),
        });
        storage.commit().unwrap();
    }
    let storage = Storage::on(disk.clone(), Durability::Sync);
    let (_, read) = Log::<Entry>::open(&storage, "entries").unwrap();
    assert_eq!(read.len(), 1);
    let storage = Storage::on(disk.clone(), Durability::Sync);
    let refused = Log::<Widened>::open(&storage, "entries").err().unwrap();
    assert!(
        refused.to_string().contains("entries.log")
            && refused.to_string().contains("written by a build whose")
            && refused
                .to_string()
                .contains("Entry.key: u64 in this build, u32 in the file"),
        "{refused}"
    );
    let refused = Cell::<Widened>::open(&storage, "last").err().unwrap();
    assert!(refused.to_string().contains("last.cell"), "{refused}");

    // The log moved away to start afresh, its shape file left behind: the
    // new build starts with no records, and its shape is kept from then on.
    let afresh = MemoryDisk::new();
    afresh.put(
        "entries.log.shape",
        disk.contents("entries.log.shape").unwrap(),
    );
    let storage = Storage::on(afresh.clone(), Durability::Sync);
    let (mut log, read) = Log::<Widened>::open(&storage, "entries").unwrap();
    assert!(read.is_empty());
    log.append(&Widened {
        key: 2,
        value: "two".into(),
    });
    storage.commit().unwrap();
    let storage = Storage::on(afresh.clone(), Durability::Sync);
    assert_eq!(
        Log::<Widened>::open(&storage, "entries").unwrap().1.len(),
        1
    );
    let storage = Storage::on(afresh, Durability::Sync);
    assert!(Log::<Entry>::open(&storage, "entries").is_err());
}

/// State kept before shapes were (no `.shape` file) is read as it is, and
/// its shape kept from the next commit on.
#[test]
fn state_kept_without_its_shape_is_read_and_given_one() {
    let disk = MemoryDisk::new();
    write_commits(&disk, 2, 2);
    let unshaped = MemoryDisk::new();
    unshaped.put("events.log", disk.contents("events.log").unwrap());
    let (storage, _, records) = open_log(&unshaped, Durability::Sync);
    assert_eq!(records, (0..4).map(rec).collect::<Vec<_>>());
    assert_eq!(unshaped.contents("events.log.shape"), None);
    storage.commit().unwrap();
    assert_eq!(
        unshaped.contents("events.log.shape"),
        disk.contents("events.log.shape")
    );
    let storage = Storage::on(unshaped.clone(), Durability::Sync);
    assert!(Log::<u64>::open(&storage, "events").is_err());
}
