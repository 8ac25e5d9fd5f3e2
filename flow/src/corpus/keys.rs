//! The counter's keys and updates, and the line protocol of its clients.

/// One update of a key's count.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Update {
    pub key: String,
    pub delta: i64,
}

/// Which of `shards` owns `key`.
pub fn shard_for(key: &str, shards: usize) -> usize {
    key.bytes().map(usize::from).sum::<usize>() % shards
}

/// `KEY DELTA`, or why not.
pub fn parse(line: &str) -> Result<Update, String> {
    let (key, delta) = line
        .split_once(' ')
        .ok_or_else(|| format!("expected `KEY DELTA`, got {line:?}"))?;
    let delta = delta
        .trim()
        .parse()
        .map_err(|e| format!("bad delta: {e}"))?;
    Ok(Update {
        key: key.to_string(),
        delta,
    })
}

pub mod lines {
    use weir::{BadInput, ClientCodec};

    /// Newline-terminated text lines.
    #[derive(Clone)]
    pub struct Lines;

    impl ClientCodec for Lines {
        type Request = String;
        type Reply = String;

        fn decode(&mut self, bytes: &[u8]) -> Result<Option<(String, usize)>, BadInput> {
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let line =
                std::str::from_utf8(&bytes[..end]).map_err(|_| BadInput("not UTF-8".into()))?;
            Ok(Some((line.trim_end_matches('\r').to_string(), end + 1)))
        }

        fn encode(&mut self, reply: String, out: &mut Vec<u8>) {
            out.extend_from_slice(reply.as_bytes());
            out.push(b'\n');
        }
    }
}
