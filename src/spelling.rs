//! The nearest known word to a misspelt one, for "did you mean" in the
//! messages that refuse a configuration.

/// The edit distance between `a` and `b`: insertions, deletions,
/// substitutions and swaps of two neighbours, one character each.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known word `word` most likely misspells: the nearest of `known`
/// within two edits (one for words of up to three characters), unless
/// `word` is itself known.
pub fn misspelt<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let most = if word.chars().count() <= 3 { 1 } else { 2 };
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in known {
        let d = distance(word, candidate);
        if d == 0 {
            return None;
        }
        if d <= most && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_find_their_word_and_known_words_none() {
        assert_eq!(distance("tennant", "tenant"), 1);
        assert_eq!(distance("dya", "day"), 1);
        let known = ["tenant", "mvpd", "day", "hour", "cmu_active_sessions"];
        assert_eq!(misspelt("tennant", known), Some("tenant"));
        assert_eq!(
            misspelt("cmu_active_session", known),
            Some("cmu_active_sessions")
        );
        assert_eq!(misspelt("tenant", known), None);
        assert_eq!(
            misspelt("occurrences", known),
            None,
            "an undocumented word stays"
        );
        assert_eq!(misspelt("dy", known), Some("day"));
    }
}
