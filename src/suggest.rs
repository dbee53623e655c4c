//! "Did you mean ...?": the closest known word to a mistyped one.

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most 2 edits, and fewer edits than the candidate has characters).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|&(d, c)| d <= 2 && d < c.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(closest("wrk", ["web", "worker", "work"]), Some("work"));
        assert_eq!(closest("comand", ["command", "directory"]), Some("command"));
        assert_eq!(closest("zzzzzz", ["web", "worker"]), None);
        assert_eq!(closest("a", ["b"]), None, "one-letter names are not suggestions for anything");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
