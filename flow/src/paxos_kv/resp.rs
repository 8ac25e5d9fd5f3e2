//! RESP, the Redis protocol: requests are arrays of bulk strings (what
//! `redis-cli` and `redis-benchmark` send) or inline commands (a line of
//! words, what `nc` users type); replies are simple strings, errors,
//! integers and bulk strings.

use super::request::{self, Request};
use weir::{BadInput, ClientCodec};

/// The protocol, for `source_external`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resp;

/// A request's words, read one at a time as they are decoded (see
/// [`request::parse`]).
pub trait Words<'a> {
    /// Words not read yet.
    fn left(&self) -> usize;
    /// The next word; read only while some are left.
    fn next(&mut self) -> Result<&'a [u8], Stop>;
}

/// Why a request was not decoded.
#[derive(Debug)]
pub enum Stop {
    /// Its bytes are not all there yet.
    Incomplete,
    Bad(BadInput),
}

/// What a client is answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// `+PONG`, or a bulk string for `PING message`.
    Pong,
    /// A bulk string, or the null bulk string for `None`.
    Bulk(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    Integer(i64),
    /// `-message`: the message should start with an error code (`ERR ...`).
    Error(String),
}

/// Arguments and elements beyond this are bad input.
const MAX_ELEMENTS: usize = 1 << 20;
/// A bulk string longer than Redis's own limit (512 MB) is bad input.
const MAX_BULK: usize = 512 << 20;

impl ClientCodec for Resp {
    type Request = Request;
    type Reply = Reply;

    fn decode(&mut self, bytes: &[u8]) -> Result<Option<(Request, usize)>, BadInput> {
        let decoded = match bytes.first() {
            None => return Ok(None),
            Some(b'*') => decode_array(bytes),
            Some(_) => decode_inline(bytes),
        };
        match decoded {
            Ok(decoded) => Ok(Some(decoded)),
            Err(Stop::Incomplete) => Ok(None),
            Err(Stop::Bad(bad)) => Err(bad),
        }
    }

    fn encode(&mut self, reply: Reply, out: &mut Vec<u8>) {
        match reply {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Pong => out.extend_from_slice(b"+PONG\r\n"),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(value)) => {
                out.push(b'$');
                out.extend_from_slice(value.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&value);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(message) => {
                out.push(b'-');
                // A line break would end the error early and desynchronise the client.
                out.extend(
                    message
                        .bytes()
                        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// `*<n>\r\n` then `n` times `$<len>\r\n<bytes>\r\n`.
fn decode_array(bytes: &[u8]) -> Result<(Request, usize), Stop> {
    let (count, at) = length_line(bytes, 1, "array length")?;
    if count > MAX_ELEMENTS {
        return Err(Stop::Bad(BadInput(format!(
            "an array of {count} elements (at most {MAX_ELEMENTS})"
        ))));
    }
    let mut words = BulkStrings {
        bytes,
        at,
        left: count,
    };
    let request = request::parse(&mut words)?;
    // What the request did not read ends where the last word does.
    while words.left > 0 {
        words.next()?;
    }
    Ok((request, words.at))
}

/// An array's bulk strings, each checked as it is read.
struct BulkStrings<'a> {
    bytes: &'a [u8],
    /// Where the next one starts.
    at: usize,
    left: usize,
}

impl<'a> Words<'a> for BulkStrings<'a> {
    fn left(&self) -> usize {
        self.left
    }

    #[inline]
    fn next(&mut self) -> Result<&'a [u8], Stop> {
        debug_assert!(self.left > 0, "read past the array");
        let bytes = self.bytes;
        match bytes.get(self.at) {
            None => return Err(Stop::Incomplete),
            Some(b'$') => {}
            Some(&other) => {
                return Err(Stop::Bad(BadInput(format!(
                    "expected a bulk string (`$`) in a command array, found {:?}",
                    other as char
                ))))
            }
        }
        let (len, start) = length_line(bytes, self.at + 1, "bulk string length")?;
        if len > MAX_BULK {
            return Err(Stop::Bad(BadInput(format!(
                "a bulk string of {len} bytes (at most {MAX_BULK})"
            ))));
        }
        let end = start + len;
        if bytes.len() < end + 2 {
            return Err(Stop::Incomplete);
        }
        if &bytes[end..end + 2] != b"\r\n" {
            return Err(Stop::Bad(BadInput(format!(
                "a bulk string of {len} bytes not followed by CRLF"
            ))));
        }
        self.at = end + 2;
        self.left -= 1;
        Ok(&bytes[start..end])
    }
}

/// [`number_line`], with the lengths of nearly every line of nearly every
/// request (one or two digits) read in place: this runs for every word.
#[inline(always)]
fn length_line(bytes: &[u8], from: usize, what: &str) -> Result<(usize, usize), Stop> {
    let digit = |d: u8| usize::from(d - b'0');
    match bytes.get(from..) {
        Some([d @ b'0'..=b'9', b'\r', b'\n', ..]) => Ok((digit(*d), from + 3)),
        Some([d @ b'0'..=b'9', e @ b'0'..=b'9', b'\r', b'\n', ..]) => {
            Ok((digit(*d) * 10 + digit(*e), from + 4))
        }
        _ => number_line(bytes, from, what),
    }
}

/// The decimal number from `bytes[from..]` to the next CRLF, and where the
/// next line starts. One pass over at most 19 digits, which cannot overflow
/// (a longer number is past every limit anyway). Kept out of line: inlined
/// at its two calls, it pushed `decode_array`'s allocations out of line, for
/// more instructions in all.
#[inline(never)]
fn number_line(bytes: &[u8], from: usize, what: &str) -> Result<(usize, usize), Stop> {
    let rest = bytes.get(from..).unwrap_or_default();
    let mut number: u64 = 0;
    let mut at = 0;
    while let Some(digit) = rest.get(at).filter(|b| b.is_ascii_digit() && at < 19) {
        number = number * 10 + u64::from(digit - b'0');
        at += 1;
    }
    match rest.get(at) {
        None => Err(Stop::Incomplete),
        Some(b'\r') if at > 0 => match rest.get(at + 1) {
            None => Err(Stop::Incomplete),
            Some(b'\n') => Ok((number as usize, from + at + 2)),
            Some(_) => Err(not_a_number(rest, what)),
        },
        Some(_) => Err(not_a_number(rest, what)),
    }
}

/// The error for a length line that is not a number, quoting it.
#[cold]
fn not_a_number(line: &[u8], what: &str) -> Stop {
    let end = line
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(line.len())
        .min(24);
    Stop::Bad(BadInput(format!(
        "the {what} is not a number: {:?}",
        String::from_utf8_lossy(&line[..end])
    )))
}

/// A line of words separated by spaces, ended by LF (or CRLF).
fn decode_inline(bytes: &[u8]) -> Result<(Request, usize), Stop> {
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        if bytes.len() > 64 << 10 {
            return Err(Stop::Bad(BadInput(
                "an inline command longer than 64 KiB".into(),
            )));
        }
        return Err(Stop::Incomplete);
    };
    let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
    let words: Vec<&[u8]> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let request = request::parse(&mut Listed(words.iter()))?;
    Ok((request, end + 1))
}

/// An inline command's words, all there.
struct Listed<'a, 'w>(std::slice::Iter<'w, &'a [u8]>);

impl<'a> Words<'a> for Listed<'a, '_> {
    fn left(&self) -> usize {
        self.0.len()
    }

    fn next(&mut self) -> Result<&'a [u8], Stop> {
        Ok(self.0.next().expect("read only while words are left"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Op;
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Option<(Request, usize)>, BadInput> {
        Resp.decode(bytes)
    }

    fn set(key: &[u8], value: &[u8]) -> Request {
        Request::Op(Op::Set(key.to_vec(), value.to_vec()))
    }

    #[test]
    fn an_array_decodes_and_says_how_much_it_used() {
        let bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n*1\r\n";
        let (request, used) = decode(bytes).unwrap().unwrap();
        assert_eq!(request, set(b"k", b"vv"));
        assert_eq!(&bytes[used..], b"*1\r\n");
    }

    #[test]
    fn words_a_request_does_not_read_are_skipped_and_still_checked() {
        let bytes = b"*3\r\n$4\r\nNOPE\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n";
        let (request, used) = decode(bytes).unwrap().unwrap();
        assert!(matches!(request, Request::Now(Reply::Error(e)) if e.contains("'NOPE'")));
        assert_eq!(&bytes[used..], b"*1\r\n");
        let err = decode(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nvv\r\n").unwrap_err();
        assert!(err.0.contains("not followed by CRLF"), "{err}");
        let err = decode(b"*3\r\n$4\r\nNOPE\r\n$1\r\na\r\n:1\r\n").unwrap_err();
        assert!(err.0.contains("expected a bulk string"), "{err}");
    }

    #[test]
    fn every_prefix_of_a_request_waits_for_more() {
        let bytes = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n]).unwrap(), None, "prefix of {n} bytes");
        }
        assert!(decode(bytes).unwrap().is_some());
    }

    #[test]
    fn lengths_of_every_width_decode_whole_and_not_before() {
        for key in [0, 1, 9, 10, 11, 99, 100, 101] {
            for value in [0, 9, 10, 99, 100, 1000] {
                let (key, value) = (vec![b'k'; key], vec![b'\n'; value]);
                let mut bytes = b"*3\r\n$3\r\nset\r\n".to_vec();
                for word in [&key, &value] {
                    bytes.extend(format!("${}\r\n", word.len()).bytes());
                    bytes.extend_from_slice(word);
                    bytes.extend_from_slice(b"\r\n");
                }
                assert_eq!(
                    decode(&bytes).unwrap(),
                    Some((set(&key, &value), bytes.len()))
                );
                for n in 0..bytes.len() {
                    assert_eq!(decode(&bytes[..n]).unwrap(), None, "prefix of {n} bytes");
                }
            }
        }
    }

    #[test]
    fn inline_commands_split_on_spaces() {
        let (request, used) = decode(b"SET  a b\r\nGET a\n").unwrap().unwrap();
        assert_eq!(request, set(b"a", b"b"));
        assert_eq!(used, 10);
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let err = decode(b"*x\r\n").unwrap_err();
        assert!(err.0.contains("array length is not a number"), "{err}");
        let err = decode(b"*1\r\n+PING\r\n").unwrap_err();
        assert!(err.0.contains("expected a bulk string"), "{err}");
        let err = decode(b"*1\r\n$2\r\nabcd\r\n").unwrap_err();
        assert!(err.0.contains("not followed by CRLF"), "{err}");
        for bad in [
            &b"*1\r\n$\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$+1\r\nx\r\n",
            b"*1\r\n$1\rx\r\n",
            b"*1\r\n$99999999999999999999\r\n",
        ] {
            let err = decode(bad).unwrap_err();
            assert!(
                err.0.contains("bulk string length is not a number"),
                "{err}"
            );
        }
        for endless in [&b"*123456789012345678901234"[..], &[b'0'; 40]] {
            let mut bytes = b"*".to_vec();
            bytes.extend_from_slice(endless.strip_prefix(b"*").unwrap_or(endless));
            let err = decode(&bytes).unwrap_err();
            assert!(err.0.contains("array length is not a number"), "{err}");
        }
    }

    /// A request's bytes as `redis-cli` sends them: an array of bulk strings.
    fn array(words: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            bytes.extend(format!("${}\r\n", word.len()).bytes());
            bytes.extend_from_slice(word);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes
    }

    /// Words clients send: the commands' names in either case, and bytes of
    /// every kind (RESP's own markers and line ends among them).
    fn word() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(vec!["SET", "get", "Del", "PING", "auth", "x"])
                .prop_map(|w| w.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
            prop::collection::vec(prop::sample::select(b"*$\r\n0123 ".to_vec()), 0..12),
        ]
    }

    proptest! {
        /// Whatever a client sends, the decoder answers with a request, a
        /// wait for more or an error: it never panics (a panic would take
        /// the proposer down with every client on it), and what it says it
        /// used is there.
        #[test]
        fn any_bytes_decode_to_a_request_more_or_an_error(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            requests in prop::collection::vec(prop::collection::vec(word(), 0..5), 1..4),
            garble in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
        ) {
            // Random bytes, and requests that are nearly right, cut short
            // anywhere (as a read may leave them).
            let mut nearly: Vec<u8> = requests.iter().flat_map(|w| array(w)).collect();
            for (at, byte) in garble {
                let i = at.index(nearly.len());
                nearly[i] = byte;
            }
            nearly.truncate(cut.index(nearly.len() + 1));
            for input in [bytes, nearly] {
                if let Ok(Some((_, used))) = decode(&input) {
                    prop_assert!(used > 0 && used <= input.len());
                }
            }
        }

        /// Requests sent back to back decode one by one, each from its own
        /// bytes, and each waits while any of its bytes is missing.
        #[test]
        fn requests_back_to_back_decode_one_by_one(
            requests in prop::collection::vec(prop::collection::vec(word(), 1..5), 1..6),
        ) {
            let sent: Vec<Vec<u8>> = requests.iter().map(|w| array(w)).collect();
            let stream = sent.concat();
            let mut at = 0;
            for bytes in &sent {
                for cut in 0..bytes.len() {
                    prop_assert_eq!(decode(&stream[at..at + cut]).unwrap(), None);
                }
                let whole = decode(&stream[at..]).unwrap().unwrap();
                prop_assert_eq!(&whole, &decode(bytes).unwrap().unwrap());
                prop_assert_eq!(whole.1, bytes.len());
                at += whole.1;
            }
            prop_assert_eq!(at, stream.len());
        }
    }

    #[test]
    fn replies_encode_as_redis_does() {
        let mut out = Vec::new();
        for reply in [
            Reply::Ok,
            Reply::Bulk(Some(b"v".to_vec())),
            Reply::Bulk(None),
            Reply::Integer(2),
            Reply::Error("ERR bad\r\nthing".into()),
        ] {
            Resp.encode(reply, &mut out);
        }
        assert_eq!(out, b"+OK\r\n$1\r\nv\r\n$-1\r\n:2\r\n-ERR bad  thing\r\n");
    }
}
