//! Generated text for the word count: deterministic, splittable by line, with a
//! vocabulary of a few thousand words of skewed frequency.

/// Bytes in one line, about (lines end at the first word past this).
const LINE_BYTES: usize = 100;
const VOCABULARY: u64 = 5000;

/// The lines of a text of about `total_bytes` that belong to part `part` of
/// `parts` (line `i` belongs to part `i % parts`).
pub fn lines(part: usize, parts: usize, total_bytes: u64) -> impl Iterator<Item = String> {
    let count = total_bytes.div_ceil(LINE_BYTES as u64 + 1);
    (part as u64..count).step_by(parts.max(1)).map(line)
}

/// Line `i` of the text.
pub fn line(i: u64) -> String {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut line = String::with_capacity(LINE_BYTES + 16);
    while line.len() < LINE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // The smaller of two draws: low word numbers are the common words.
        let a = state % VOCABULARY;
        let b = (state >> 32) % VOCABULARY;
        if !line.is_empty() {
            line.push(' ');
        }
        push_word(&mut line, a.min(b));
    }
    line
}

/// Word number `n`: letters in base 26, at least two of them.
fn push_word(line: &mut String, mut n: u64) {
    let start = line.len();
    loop {
        line.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 && line.len() - start >= 2 {
            break;
        }
    }
}

/// Word counts, as every system keeps them (one owned key per distinct word).
pub type Counts = std::collections::HashMap<String, u64>;

/// Counts the words of `line` into `counts`, allocating only for new words: the
/// counting step every system shares.
pub fn count_words(counts: &mut Counts, line: &str) {
    for word in line.split_whitespace() {
        match counts.get_mut(word) {
            Some(count) => *count += 1,
            None => {
                counts.insert(word.to_owned(), 1);
            }
        }
    }
}

/// What a word count is checked by: words in all, distinct words, and a checksum
/// of every (word, count) that does not depend on their order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub words: u64,
    pub distinct: u64,
    pub checksum: u64,
}

impl Summary {
    pub fn add(&mut self, word: &str, count: u64) {
        let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.words += count;
        self.distinct += 1;
        self.checksum = self.checksum.wrapping_add(hash.wrapping_mul(count));
    }

    /// The result line.
    pub fn report(&self) -> String {
        format!(
            "bench words={} distinct={} checksum={}",
            self.words, self.distinct, self.checksum
        )
    }
}

/// The text's bytes (lines plus their newlines), and its word count done the
/// plain way, in one thread: what every system's answer is checked against.
pub fn reference(total_bytes: u64) -> (u64, Summary) {
    let mut counts = Counts::new();
    let mut bytes = 0;
    for line in lines(0, 1, total_bytes) {
        bytes += line.len() as u64 + 1;
        count_words(&mut counts, &line);
    }
    let mut summary = Summary::default();
    for (word, count) in &counts {
        summary.add(word, *count);
    }
    (bytes, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_text_once() {
        let whole: Vec<String> = lines(0, 1, 10_000).collect();
        let mut parts: Vec<String> = (0..3).flat_map(|p| lines(p, 3, 10_000)).collect();
        let mut sorted = whole.clone();
        sorted.sort();
        parts.sort();
        assert_eq!(parts, sorted);
        assert!(whole
            .iter()
            .all(|l| l.len() >= LINE_BYTES && l.len() < LINE_BYTES + 12));
    }
}
