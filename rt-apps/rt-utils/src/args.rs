//! What the tools' command-line parsers share beyond `lexopt`, which splits
//! the arguments into options and values.

/// Resolves a long option the way `getopt_long` does: `name` (without the
/// dashes) is one of `names`, or a prefix of exactly one of them (`dur` for
/// `duration`). Otherwise `Err` lists the candidates: none when `name` is
/// unknown (or empty), several when it is ambiguous.
pub fn long_option<'a>(name: &str, names: &[&'a str]) -> Result<&'a str, Vec<&'a str>> {
    if let Some(full) = names.iter().find(|n| **n == name) {
        return Ok(full);
    }
    let found: Vec<&'a str> = names
        .iter()
        .copied()
        .filter(|n| !name.is_empty() && n.starts_with(name))
        .collect();
    match found[..] {
        [one] => Ok(one),
        _ => Err(found),
    }
}

#[cfg(test)]
mod tests {
    use super::long_option;

    const NAMES: &[&str] = &["histogram", "histofall", "help", "hist", "quiet"];

    #[test]
    fn full_names_and_unique_prefixes() {
        assert_eq!(long_option("quiet", NAMES), Ok("quiet"));
        assert_eq!(long_option("q", NAMES), Ok("quiet"));
        assert_eq!(long_option("histog", NAMES), Ok("histogram"));
        // A full name wins over the longer names it is a prefix of.
        assert_eq!(long_option("hist", NAMES), Ok("hist"));
    }

    #[test]
    fn unknown_and_ambiguous_names_list_the_candidates() {
        assert_eq!(long_option("bogus", NAMES), Err(vec![]));
        assert_eq!(long_option("", NAMES), Err(vec![]));
        assert_eq!(long_option("quiet2", NAMES), Err(vec![]));
        assert_eq!(
            long_option("histo", NAMES),
            Err(vec!["histogram", "histofall"])
        );
        assert_eq!(
            long_option("h", NAMES),
            Err(vec!["histogram", "histofall", "help", "hist"])
        );
    }
}
