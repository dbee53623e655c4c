//! "Did you mean ...?": the closest known word to a mistyped one.
//!
//! Suggestions are computed for words that clients send (`svc status NAME` against every
//! program and group name), so their cost must not depend on what a client chooses to send:
//! a word longer than [`MAX_WORD_BYTES`] gets no suggestion, candidates whose length rules out
//! [`MAX_EDITS`] edits are skipped without a look at their characters, and the distance is
//! computed in a band of `2 * MAX_EDITS + 1` cells per row that stops once no cell is close
//! enough. Work per candidate is thus at most about `5 * (MAX_WORD_BYTES + 8)` cells.

/// The most edits a suggestion may be away from the word typed.
pub const MAX_EDITS: usize = 2;

/// Longer words get no suggestion: nobody mistypes 128 bytes, and it bounds the work.
pub const MAX_WORD_BYTES: usize = 128;

/// One edit changes a UTF-8 string's length by at most 4 bytes (a character is 1 to 4 bytes).
const MAX_BYTES_PER_EDIT: usize = 4;

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most [`MAX_EDITS`] edits, and fewer edits than the candidate has characters);
/// the first of equally close ones. `None` for words over [`MAX_WORD_BYTES`].
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_WORD_BYTES {
        return None;
    }
    let word_chars: Vec<char> = word.chars().collect();
    let mut cand_chars: Vec<char> = Vec::new();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c.len().abs_diff(word.len()) > MAX_EDITS * MAX_BYTES_PER_EDIT {
            continue;
        }
        // Only a strictly closer candidate can replace the best: the first one wins ties.
        let max = match best {
            Some((0, _)) => break,
            Some((d, _)) => d - 1,
            None => MAX_EDITS,
        };
        cand_chars.clear();
        cand_chars.extend(c.chars());
        if let Some(d) = distance_within(&word_chars, &cand_chars, max)
            && d < cand_chars.len()
        {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
///
/// Costs `len(a) * len(b)`: for words from outside, use [`closest`], which is bounded.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_within(&a, &b, usize::MAX).unwrap_or(usize::MAX)
}

/// The edit distance between `a` and `b` if it is at most `max`, else `None`, computing only
/// the cells within `max` of the diagonal (any other cell is already more than `max`) and
/// stopping at the first row whose cells all exceed `max`.
fn distance_within(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    // Stands for "more than max" in every cell that is; keeps the arithmetic from overflowing.
    let over = max.saturating_add(1);
    // row[j] = distance(a[..i], b[..j]) capped at `over`; cells right of the band still hold
    // their row-0 value, which is `over` for every j past `max`, as out-of-band cells must.
    let mut row: Vec<usize> = (0..=b.len()).map(|j| j.min(over)).collect();
    for (i, &ca) in a.iter().enumerate().map(|(i, c)| (i + 1, c)) {
        let lo = i.saturating_sub(max).max(1);
        let hi = i.saturating_add(max).min(b.len());
        let mut diag = row[lo - 1];
        row[lo - 1] = if lo == 1 { i.min(over) } else { over };
        let mut row_min = row[lo - 1];
        for j in lo..=hi {
            count_cell();
            let up = row[j];
            let cell = if ca == b[j - 1] { diag } else { diag.min(up).min(row[j - 1]).saturating_add(1) };
            diag = up;
            row[j] = cell.min(over);
            row_min = row_min.min(row[j]);
        }
        if row_min > max {
            return None;
        }
    }
    Some(row[b.len()]).filter(|&d| d <= max)
}

#[cfg(test)]
thread_local! {
    /// Cells computed by [`distance_within`] on this thread, so tests can assert the work done.
    static CELLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
fn count_cell() {
    #[cfg(test)]
    CELLS.with(|c| c.set(c.get() + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells computed while running `f`.
    fn cells(f: impl FnOnce()) -> usize {
        CELLS.with(|c| c.set(0));
        f();
        CELLS.with(std::cell::Cell::get)
    }

    /// The textbook full-matrix distance, as the reference the bounded one must agree with.
    fn reference(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
                prev = cur;
            }
        }
        row[b.len()]
    }

    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(closest("wrk", ["web", "worker", "work"]), Some("work"));
        assert_eq!(closest("comand", ["command", "directory"]), Some("command"));
        assert_eq!(closest("zzzzzz", ["web", "worker"]), None);
        assert_eq!(closest("a", ["b"]), None, "one-letter names are not suggestions for anything");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn ties_go_to_the_first_candidate() {
        assert_eq!(closest("wab", ["wub", "web", "wob"]), Some("wub"));
        assert_eq!(closest("wab", ["worker", "webs", "wob"]), Some("wob"), "1 edit beats 2");
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_one() {
        // Every pair of short words over an alphabet with 1-, 2-, 3- and 4-byte characters.
        let alphabet = ['a', 'b', 'é', '€', '🦀'];
        let mut words = vec![String::new()];
        for len in 1..=4 {
            let mut n = 0usize;
            while n < alphabet.len().pow(len) {
                let mut w = String::new();
                let mut k = n;
                for _ in 0..len {
                    w.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                words.push(w);
                n += 7; // a sample of each length keeps this quick
            }
        }
        for a in &words {
            for b in &words {
                let full = reference(a, b);
                assert_eq!(levenshtein(a, b), full, "{a:?} {b:?}");
                let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                for max in 0..=3 {
                    let want = (full <= max).then_some(full);
                    assert_eq!(distance_within(&ac, &bc, max), want, "{a:?} {b:?} within {max}");
                }
                // The byte-length shortcut in `closest` never skips a word within reach.
                if full <= MAX_EDITS {
                    assert!(a.len().abs_diff(b.len()) <= MAX_EDITS * MAX_BYTES_PER_EDIT, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn long_words_get_no_suggestion_and_cost_nothing() {
        let huge = "x".repeat(65_000);
        // A candidate one edit away would be a suggestion if long words were looked at.
        let mut names: Vec<String> = (0..1999).map(|i| format!("program-{i:04}")).collect();
        names.push(format!("{}y", &huge[1..]));
        let work = cells(|| assert_eq!(closest(&huge, names.iter().map(String::as_str)), None));
        assert_eq!(work, 0);
        // Just past the cap, even a perfect near-miss is not looked at.
        let long = "p".repeat(MAX_WORD_BYTES);
        let names = [format!("{long}x")];
        assert_eq!(closest(&long, names.iter().map(String::as_str)), Some(names[0].as_str()));
        assert_eq!(closest(&format!("{long}q"), names.iter().map(String::as_str)), None);
    }

    #[test]
    fn work_per_candidate_is_bounded() {
        // Near-misses at the cap are the most work: every row of the band stays within reach.
        let word = "a".repeat(MAX_WORD_BYTES);
        let names: Vec<String> = (0..2000).map(|i| format!("{}{:02}", &word[2..], i % 100)).collect();
        let per_row = 2 * MAX_EDITS + 1;
        let work = cells(|| assert!(closest(&word, names.iter().map(String::as_str)).is_some()));
        assert!(work > 2000 * MAX_WORD_BYTES, "the test no longer exercises full rows: {work} cells");
        assert!(work <= 2000 * per_row * MAX_WORD_BYTES, "{work} cells");
        // Candidates whose byte length rules them out cost no cells (nor a copy of their chars).
        let far: Vec<String> = (0..2000).map(|i| format!("n{i}-{}", "z".repeat(200))).collect();
        let work = cells(|| assert_eq!(closest("web", far.iter().map(String::as_str)), None));
        assert_eq!(work, 0);
        // Nor is work spent past the row where every cell is more than 2 edits away.
        let stranger = "q".repeat(100);
        let work = cells(|| assert_eq!(closest(&"a".repeat(100), [stranger.as_str()]), None));
        assert!(work <= 3 * per_row, "{work} cells for an obvious stranger");
    }
}
