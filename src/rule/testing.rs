//! Helpers for the rule loader's tests.

/// `src` with each line in turn deleted, duplicated, and its value (after `key: `, or the whole
/// line) replaced by two of `odd` (`odd[i]` and `odd[i + stride]`, in turn over the lines):
/// the loader must report on every one of them, never panic.
pub(crate) fn mangled_lines(src: &str, odd: &[&str], stride: usize) -> Vec<String> {
    let lines: Vec<&str> = src.lines().collect();
    // The file with line `i` replaced by `with`.
    let edit = |i: usize, with: &[&str]| {
        let mut out = lines[..i].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&lines[i + 1..]);
        out.join("\n")
    };
    let mut variants = Vec::new();
    for i in 0..lines.len() {
        variants.push(edit(i, &[]));
        variants.push(edit(i, &[lines[i], lines[i]]));
        for o in [odd[i % odd.len()], odd[(i + stride) % odd.len()]] {
            let cut = lines[i].find(": ").map_or(0, |p| p + 2);
            variants.push(edit(i, &[&format!("{}{o}", &lines[i][..cut])]));
        }
    }
    variants
}
