//! What a client asks, made from its words as RESP decodes them: a command
//! for the log, an `AUTH`, or a request answered at once.
//!
//! Made word by word, with no list of words in between: a `SET`'s name is
//! matched where it lies, and only its key and value are copied out.

use super::resp::{Reply, Stop, Words};
use super::Op;

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A command for the log.
    Op(Op),
    /// `AUTH` and its arguments.
    Auth(Vec<Vec<u8>>),
    /// Answered at once: `PING`, and requests that are wrong.
    Now(Reply),
}

/// The commands this store knows.
#[derive(Clone, Copy)]
enum Name {
    Set,
    Get,
    Del,
    Ping,
    Auth,
}

const NAMES: [(&str, Name); 5] = [
    ("set", Name::Set),
    ("get", Name::Get),
    ("del", Name::Del),
    ("ping", Name::Ping),
    ("auth", Name::Auth),
];

/// The request `words` make. It reads the words it needs; the caller
/// skips the rest (a request answered with an error may leave some).
pub fn parse<'a>(words: &mut impl Words<'a>) -> Result<Request, Stop> {
    if words.left() == 0 {
        return Ok(Request::Now(Reply::Error("ERR empty command".into())));
    }
    let name = words.next()?;
    let args = words.left();
    // Matched without an uppercased copy: this runs for every request.
    let Some((known, command)) = NAMES
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known.as_bytes()))
    else {
        return Ok(Request::Now(Reply::Error(format!(
            "ERR unknown command '{}' (this store knows PING, SET, GET and DEL)",
            String::from_utf8_lossy(name)
        ))));
    };
    Ok(match command {
        Name::Set if args == 2 => Request::Op(Op::Set(owned(words)?, owned(words)?)),
        Name::Set if args > 2 => Request::Now(Reply::Error(
            "ERR syntax error (SET options are not supported)".into(),
        )),
        Name::Get if args == 1 => Request::Op(Op::Get(owned(words)?)),
        Name::Del if args >= 1 => Request::Op(Op::Del(all(words)?)),
        Name::Ping if args == 0 => Request::Now(Reply::Pong),
        Name::Ping if args == 1 => Request::Now(Reply::Bulk(Some(owned(words)?))),
        Name::Auth => Request::Auth(all(words)?),
        _ => Request::Now(Reply::Error(format!(
            "ERR wrong number of arguments for '{known}' command"
        ))),
    })
}

/// The next word, copied.
fn owned<'a>(words: &mut impl Words<'a>) -> Result<Vec<u8>, Stop> {
    Ok(words.next()?.to_vec())
}

/// The words left, copied.
fn all<'a>(words: &mut impl Words<'a>) -> Result<Vec<Vec<u8>>, Stop> {
    (0..words.left()).map(|_| owned(words)).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use weir::ClientCodec;

    /// The request an inline command (`SET k v`) makes.
    pub fn from_line(line: &str) -> Request {
        let line = format!("{line}\r\n");
        let (request, used) = super::super::resp::Resp
            .decode(line.as_bytes())
            .expect("a line decodes")
            .expect("the whole line is there");
        assert_eq!(used, line.len());
        request
    }

    fn error(line: &str) -> String {
        match from_line(line) {
            Request::Now(Reply::Error(e)) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn commands_parse_and_others_are_answered_at_once() {
        let op = |line| match from_line(line) {
            Request::Op(op) => op,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(op("set k v"), Op::Set(b"k".to_vec(), b"v".to_vec()));
        assert_eq!(op("GET k"), Op::Get(b"k".to_vec()));
        assert_eq!(op("DEL a b"), Op::Del(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(from_line("PING"), Request::Now(Reply::Pong));
        assert_eq!(
            from_line("PING hi"),
            Request::Now(Reply::Bulk(Some(b"hi".to_vec())))
        );
        assert_eq!(
            from_line("auth user pw"),
            Request::Auth(vec![b"user".to_vec(), b"pw".to_vec()])
        );
        assert!(error("GET").contains("wrong number of arguments for 'get'"));
        assert!(error("ping a b").contains("wrong number of arguments for 'ping'"));
        assert!(error("SET k v EX 10").contains("SET options are not supported"));
        assert!(error("FLUSHALL x").contains("unknown command 'FLUSHALL'"));
        assert!(error("").contains("empty command"));
    }
}
