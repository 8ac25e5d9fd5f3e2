//! The two shapes of durable state: a log of records, and a cell.

use crate::frame::{self, Read};
use crate::{DurableError, Storage};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use weir_core::shape::WireShape;

/// An append-only log of `T`s, file `<name>.log`: records appended during a
/// tick are written at its commit; [`compact`](Log::compact) replaces the
/// whole log by the records of a snapshot (when what it holds has grown
/// stale: slots forgotten, keys overwritten), which is
/// [`worth_compacting`](Log::worth_compacting) once as much was appended
/// as the snapshot before it wrote.
pub struct Log<T> {
    storage: Storage,
    file: String,
    /// Bytes of the log when it was opened or last compacted.
    held: usize,
    /// Bytes of records appended since.
    appended: usize,
    _records: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Log<T> {
    /// Opens log `name` and reads back what it holds (the records of its
    /// last compaction, then those appended after). A torn tail is dropped
    /// (cut from the file, with a warning); other damage is an error.
    pub fn open(storage: &Storage, name: &str) -> Result<(Log<T>, Vec<T>), DurableError> {
        let file = format!("{name}.log");
        let bytes = storage.claim(&file)?.unwrap_or_default();
        hold_to_shape::<T>(storage, &file, !bytes.is_empty())?;
        let mut records = Vec::new();
        let mut at = 0;
        let torn = loop {
            match frame::read(&bytes, at) {
                Read::Frame(body, after) => {
                    weir_core::codec::decode_batch_into(body, &mut records).map_err(|e| {
                        DurableError::new(format!(
                            "{}: the records at byte {at} do not read as `{}`: {e} (were they written by a build whose records differ?)",
                            storage.describe(&file),
                            std::any::type_name::<T>()
                        ))
                    })?;
                    at = after;
                }
                Read::End => break None,
                Read::CutShort => break Some("a commit cut short"),
                Read::BadChecksum(after) if after == bytes.len() => {
                    break Some("a commit that fails its checksum")
                }
                Read::BadLength if bytes[at..].iter().all(|&b| b == 0) => {
                    break Some("zeros where a commit was being written")
                }
                Read::BadChecksum(_) | Read::BadLength => {
                    return Err(DurableError::new(format!(
                        "{}: the commit at byte {at} is damaged (it fails its checksum, and {} bytes follow it): not starting with part of this state",
                        storage.describe(&file),
                        bytes.len() - at
                    )));
                }
            }
        };
        if let Some(what) = torn {
            storage.warn(format!(
                "{}: the last {} bytes, from byte {at}, are {what} (a crash mid-write, before anything of its tick left): dropped",
                storage.describe(&file),
                bytes.len() - at
            ));
            storage.truncate(&file, at)?;
        }
        let log = Log {
            storage: storage.clone(),
            file,
            held: at,
            appended: 0,
            _records: PhantomData,
        };
        Ok((log, records))
    }

    /// Where the log is, for messages.
    pub fn describe(&self) -> String {
        self.storage.describe(&self.file)
    }

    /// Appends `record`, written at this tick's commit.
    pub fn append(&mut self, record: &T) {
        self.appended += self.storage.with_pending(&self.file, |pending| {
            let before = pending.append.records_len();
            pending.append.push(record);
            pending.append.records_len() - before
        });
    }

    /// Whether a compaction now costs no more than the appends since the
    /// last one (or since the log was opened): they hold at least as many
    /// bytes as that compaction wrote. Compacting only then bounds what is
    /// rewritten by what is appended, however large the state a snapshot
    /// holds, and the log by about twice the state.
    pub fn worth_compacting(&self) -> bool {
        self.appended >= self.held
    }

    /// Replaces the whole log, at this tick's commit, by `records` (what
    /// the state is now, as records): appends made earlier in the tick are
    /// dropped with the rest, those made after follow. The file is replaced
    /// at once: a crash leaves the old log or the new.
    pub fn compact<'r>(&mut self, records: impl IntoIterator<Item = &'r T>)
    where
        T: 'r,
    {
        let mut batch = weir_core::codec::BatchEncoder::new();
        for record in records {
            batch.push(record);
        }
        let mut body = Vec::new();
        batch
            .append_to(&mut body)
            .expect("a durable record always encodes");
        let whole = frame::whole(&body);
        (self.held, self.appended) = (whole.len(), 0);
        self.storage.with_pending(&self.file, |pending| {
            pending.append.clear();
            pending.replace = Some(whole);
        });
    }
}

/// One `T` replaced whole, file `<name>.cell`: [`set`](Cell::set) during a
/// tick, written at its commit (the file replaced at once).
pub struct Cell<T> {
    storage: Storage,
    file: String,
    _value: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Cell<T> {
    /// Opens cell `name` and reads its value back (`None` if it was never
    /// set). Since a cell is replaced at once, any damage is an error.
    pub fn open(storage: &Storage, name: &str) -> Result<(Cell<T>, Option<T>), DurableError> {
        let file = format!("{name}.cell");
        let claimed = storage.claim(&file)?;
        hold_to_shape::<T>(
            storage,
            &file,
            claimed.as_ref().is_some_and(|b| !b.is_empty()),
        )?;
        let value = match claimed {
            None => None,
            Some(bytes) => match frame::only(&bytes) {
                Some(body) => Some(weir_core::codec::decode_value(body).map_err(|e| {
                    DurableError::new(format!(
                        "{}: its value does not read as `{}`: {e} (was it written by a build whose records differ?)",
                        storage.describe(&file),
                        std::any::type_name::<T>()
                    ))
                })?),
                None => {
                    return Err(DurableError::new(format!(
                        "{}: damaged ({} bytes that are not one whole value with its checksum): not starting without this state",
                        storage.describe(&file),
                        bytes.len()
                    )))
                }
            },
        };
        let cell = Cell {
            storage: storage.clone(),
            file,
            _value: PhantomData,
        };
        Ok((cell, value))
    }

    /// Sets the value, written at this tick's commit.
    pub fn set(&mut self, value: &T) {
        let body = weir_core::codec::encode_value(value).expect("a durable value always encodes");
        let whole = frame::whole(&body);
        self.storage
            .with_pending(&self.file, |pending| pending.replace = Some(whole));
    }
}

/// Holds file `file` to the shape of `T` (weir-core's, as links compare):
/// the shape it is written with is kept beside it, in `<file>.shape`, and a
/// build whose `T` has another shape is refused, naming the first
/// difference, rather than left to misread the bytes (they carry no names).
/// A file kept before shapes were (or whose shape file was torn as it was
/// first written) is taken as it is, its shape kept from the next commit on;
/// a type that cannot be traced, too. Where `file` holds nothing (new, or
/// moved away to start afresh) there is nothing to misread: the shape of
/// this build's `T` is kept, whatever was kept before.
fn hold_to_shape<T: DeserializeOwned>(
    storage: &Storage,
    file: &str,
    holds_state: bool,
) -> Result<(), DurableError> {
    let Ok(shape) = weir_core::shape::trace::<T>() else {
        return Ok(());
    };
    let kept_in = format!("{file}.shape");
    let bytes = storage.claim(&kept_in)?.unwrap_or_default();
    let kept = frame::only(&bytes).and_then(|body| WireShape::decode(body).ok());
    let Some(kept) = kept.filter(|_| holds_state) else {
        if holds_state && !bytes.is_empty() {
            // Torn as it was first written (it is written once), say: the
            // state is taken as it is, as from before shapes were kept.
            storage.warn(format!(
                "{}: damaged, so the shape of what {} holds is unknown: kept again",
                storage.describe(&kept_in),
                storage.describe(file)
            ));
        }
        let whole = frame::whole(&shape.encode());
        storage.with_pending(&kept_in, |pending| pending.replace = Some(whole));
        return Ok(());
    };
    match shape.first_difference(&kept, ("in this build", "in the file")) {
        None => Ok(()),
        Some(difference) => Err(DurableError::new(format!(
            "{}: written by a build whose `{}` differs ({difference}): not starting on state it would misread (move it away to start afresh)",
            storage.describe(file),
            std::any::type_name::<T>()
        ))),
    }
}
