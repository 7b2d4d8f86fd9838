//! Rule and list files as text: reading them without blocking, and their bytes as UTF-8 or a
//! located error that says what the bytes look like.
//!
//! Rule files and list files are UTF-8 (a UTF-8 byte-order mark is accepted and dropped). A
//! file saved in another encoding is a load error at the line and column of its first bad
//! byte, with a guess of what the file is: UTF-16 or UTF-32 (a byte-order mark, or NUL bytes
//! between the characters), or a single-byte encoding such as Latin-1 or Windows-1252 (the bad
//! byte as that character). A NUL byte in UTF-8 text is an error too: YAML forbids it and no
//! list entry holds one.
//!
//! Only regular files (after symlinks) are opened: opening a FIFO blocks until a writer comes,
//! and a device never ends. Reads stop at a size limit, so a huge file is an error rather than
//! all of memory.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::spec::Pos;

/// Rule files are YAML documents a person writes: far below this.
pub const MAX_RULE_FILE_BYTES: u64 = 64 << 20;

/// A list file of several million entries fits.
pub const MAX_LIST_FILE_BYTES: u64 = 1 << 30;

/// Why a file could not be used as text: where (`0:0` for the file as a whole) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line > 0 {
            write!(f, "{}: ", self.pos)?;
        }
        f.write_str(&self.message)
    }
}

fn whole_file(message: String) -> TextError {
    TextError {
        pos: Pos::default(),
        message,
    }
}

/// What a path is when it is not a regular file, for messages; `None` for a regular file.
pub fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// Reads a file as UTF-8 text. With `regular_only`, anything but a regular file (after
/// symlinks) is refused before it is opened; without it (a path the user named), a FIFO is read
/// as a stream. Either way no more than `limit` bytes are read.
pub fn read(path: &Path, regular_only: bool, limit: u64) -> Result<String, TextError> {
    if regular_only {
        let meta = std::fs::metadata(path).map_err(|e| whole_file(cannot_open(path, &e)))?;
        if let Some(what) = not_regular(&meta) {
            return Err(whole_file(format!(
                "{what}, not a regular file: it is not read (it could block or never end)"
            )));
        }
    }
    let file = File::open(path).map_err(|e| whole_file(cannot_open(path, &e)))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole_file(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(whole_file(format!(
            "larger than {} MiB: not read",
            limit >> 20
        )));
    }
    decode(bytes)
}

fn cannot_open(path: &Path, e: &std::io::Error) -> String {
    let dangling = e.kind() == std::io::ErrorKind::NotFound
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if dangling {
        let target = std::fs::read_link(path)
            .map(|t| format!(" to {}", t.display()))
            .unwrap_or_default();
        format!("broken symbolic link{target}: its target does not exist")
    } else if e.kind() == std::io::ErrorKind::NotFound {
        "no such file or directory".to_owned()
    } else {
        format!("cannot read: {e}")
    }
}

/// The bytes as UTF-8 text (a leading UTF-8 byte-order mark dropped), or where and how they
/// are not.
pub fn decode(mut bytes: Vec<u8>) -> Result<String, TextError> {
    if let Some((encoding, at)) = utf16_or_32(&bytes) {
        return Err(TextError {
            pos: position(&bytes, at),
            message: format!("the file looks like {encoding}; save it as UTF-8"),
        });
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let (bytes, invalid) = match String::from_utf8(bytes) {
        Ok(text) => match memchr::memchr(0, text.as_bytes()) {
            None => return Ok(text),
            Some(_) => (text.into_bytes(), None),
        },
        Err(e) => {
            let error = e.utf8_error();
            (e.into_bytes(), Some(error))
        }
    };
    let valid = invalid.map_or(bytes.len(), |e| e.valid_up_to());
    if let Some(at) = memchr::memchr(0, &bytes[..valid]) {
        return Err(TextError {
            pos: position(&bytes, at),
            message: "NUL byte: the file is not text".to_owned(),
        });
    }
    let message = match (invalid.and_then(|e| e.error_len()), bytes.get(valid)) {
        (Some(_), Some(&b)) => format!(
            "invalid UTF-8 (byte 0x{b:02X}{}); save the file as UTF-8",
            single_byte_guess(b)
        ),
        _ => "invalid UTF-8: the file ends inside a character; save it as UTF-8".to_owned(),
    };
    Err(TextError {
        pos: position(&bytes, valid),
        message,
    })
}

/// UTF-16 or UTF-32, told by a byte-order mark, or by NUL bytes in the pattern ASCII text
/// takes in those encodings (every other byte, or three of every four); with where the first
/// byte that is not UTF-8 text is (the mark, or the first NUL).
fn utf16_or_32(bytes: &[u8]) -> Option<(&'static str, usize)> {
    const MARKS: [(&[u8], &str); 4] = [
        (
            b"\xFF\xFE\0\0",
            "UTF-32 LE (it starts with a UTF-32 byte-order mark)",
        ),
        (
            b"\0\0\xFE\xFF",
            "UTF-32 BE (it starts with a UTF-32 byte-order mark)",
        ),
        (
            b"\xFF\xFE",
            "UTF-16 LE (it starts with a UTF-16 byte-order mark)",
        ),
        (
            b"\xFE\xFF",
            "UTF-16 BE (it starts with a UTF-16 byte-order mark)",
        ),
    ];
    if let Some((_, what)) = MARKS.iter().find(|(mark, _)| bytes.starts_with(mark)) {
        return Some((what, 0));
    }
    // Without a mark: the first few hundred characters, mostly ASCII in a rule or list file.
    let head = &bytes[..bytes.len().min(1024)];
    let first_nul = memchr::memchr(0, head)?;
    let zeros_at = |rem: usize, step: usize| {
        head.iter()
            .enumerate()
            .filter(|&(i, &b)| b == 0 && i % step == rem)
            .count()
    };
    let (pairs, quads) = (head.len() / 2, head.len() / 4);
    // Strictly more than three quarters, or than half: an empty head (or one of a byte) has
    // no share to pass.
    let what = if zeros_at(1, 4) * 4 > quads * 3 && zeros_at(2, 4) * 4 > quads * 3 {
        // ASCII in UTF-32: `x 0 0 0` (LE) or `0 0 0 x` (BE).
        if head[0] == 0 {
            "UTF-32 BE (it has NUL bytes between its characters)"
        } else {
            "UTF-32 LE (it has NUL bytes between its characters)"
        }
    } else if zeros_at(1, 2) * 2 > pairs {
        "UTF-16 LE (it has NUL bytes between its characters)"
    } else if zeros_at(0, 2) * 2 > pairs {
        "UTF-16 BE (it has NUL bytes between its characters)"
    } else {
        return None;
    };
    Some((what, first_nul))
}

/// What a byte that is not UTF-8 is in the single-byte encodings files are usually saved in.
fn single_byte_guess(b: u8) -> String {
    match b {
        0xA0..=0xFF => {
            let c = char::from(b);
            if c == '\u{A0}' {
                "; Latin-1 no-break space?".to_owned()
            } else if c == '\u{AD}' {
                "; Latin-1 soft hyphen?".to_owned()
            } else {
                format!("; Latin-1 '{c}'?")
            }
        }
        0x80..=0x9F => match WINDOWS_1252[usize::from(b - 0x80)] {
            '\0' => String::new(),
            c => format!("; Windows-1252 '{c}'?"),
        },
        _ => String::new(),
    }
}

/// Windows-1252 bytes 0x80–0x9F (the C1 range Latin-1 leaves to control codes); `\0` where
/// the encoding leaves the byte undefined.
const WINDOWS_1252: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘',
    '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// Line and column (in characters, 1-based) of byte `at`; everything before it is UTF-8.
fn position(bytes: &[u8], at: usize) -> Pos {
    let before = &bytes[..at];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let col = 1 + std::str::from_utf8(&before[line_start..])
        .map_or(at - line_start, |s| s.chars().count());
    Pos { line, col }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        decode(bytes.to_vec()).unwrap_err().to_string()
    }

    /// A file of exactly the limit is read whole; one byte more is refused, not cut short. A
    /// whole-file error shows no position.
    #[test]
    fn a_file_is_read_up_to_its_limit_and_refused_beyond_it() {
        let dir = std::env::temp_dir().join(format!("sg-text-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let limit = 1 << 20;
        let at = dir.join("at.yml");
        std::fs::write(&at, vec![b'a'; limit]).unwrap();
        assert_eq!(read(&at, true, limit as u64).unwrap().len(), limit);
        let over = dir.join("over.yml");
        std::fs::write(&over, vec![b'a'; limit + 1]).unwrap();
        let refused = read(&over, true, limit as u64).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(refused.to_string(), "larger than 1 MiB: not read");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_named_and_not_opened() {
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert_eq!(not_regular(&meta), Some("a device"));
        assert_eq!(
            read(Path::new("/dev/null"), true, 10)
                .unwrap_err()
                .to_string(),
            "a device, not a regular file: it is not read (it could block or never end)"
        );
    }

    #[test]
    fn utf8_passes_and_its_byte_order_mark_is_dropped() {
        assert_eq!(decode(b"id: a\n".to_vec()).unwrap(), "id: a\n");
        assert_eq!(
            decode(b"\xEF\xBB\xBFid: \xC3\xA9\n".to_vec()).unwrap(),
            "id: é\n"
        );
        assert_eq!(decode(Vec::new()).unwrap(), "");
    }

    #[test]
    fn a_single_byte_encoding_is_named_at_its_first_bad_byte() {
        // `é` in Latin-1 on line 3, after 16 characters (one of them a two-byte `ü`).
        assert_eq!(
            err(b"id: a\ntitle: b\ndescription: \xC3\xBCb \xE9t\xE9\n"),
            "3:17: invalid UTF-8 (byte 0xE9; Latin-1 'é'?); save the file as UTF-8"
        );
        assert_eq!(
            err(b"a: \x93quoted\x94\n"),
            "1:4: invalid UTF-8 (byte 0x93; Windows-1252 '“'?); save the file as UTF-8"
        );
        assert_eq!(
            err(b"a: \x81"),
            "1:4: invalid UTF-8 (byte 0x81); save the file as UTF-8"
        );
        assert_eq!(
            err(b"a: \xC3"),
            "1:4: invalid UTF-8: the file ends inside a character; save it as UTF-8"
        );
    }

    #[test]
    fn utf16_and_utf32_are_named_with_or_without_a_byte_order_mark() {
        let utf16le: Vec<u8> = "\u{FEFF}id: a\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "id: a\ntitle: b\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let bare_le: Vec<u8> = "id: a\ntitle: b\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf32le: Vec<u8> = "id: a\n"
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        assert_eq!(
            err(&utf16le),
            "1:1: the file looks like UTF-16 LE (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        );
        assert_eq!(
            err(&utf16be),
            "1:1: the file looks like UTF-16 BE (it has NUL bytes between its characters); save it as UTF-8"
        );
        // The first byte that is not text: the NUL after `i`.
        assert_eq!(
            err(&bare_le),
            "1:2: the file looks like UTF-16 LE (it has NUL bytes between its characters); save it as UTF-8"
        );
        assert_eq!(
            err(&utf32le),
            "1:2: the file looks like UTF-32 LE (it has NUL bytes between its characters); save it as UTF-8"
        );
    }

    /// The share of NUL bytes that names an encoding is strictly more than three quarters of
    /// the four-byte groups at both inner places (UTF-32), or than half of the pairs at one
    /// place (UTF-16); at exactly the share, the next test or a NUL-byte error decides.
    #[test]
    fn an_encoding_is_named_only_above_its_share_of_nul_bytes() {
        let utf16le = "the file looks like UTF-16 LE (it has NUL bytes between its characters)";
        // Every group has a NUL third, three of four a NUL second: not UTF-32; 6 of 8 pairs
        // end in NUL: UTF-16 LE.
        assert_eq!(
            err(b"a\0\0\0b\0\0\0c\0\0\0de\0f"),
            format!("1:2: {utf16le}; save it as UTF-8")
        );
        // Every group has a NUL second, three of four a NUL third: still not UTF-32.
        assert_eq!(
            err(b"a\0\0\0b\0\0\0c\0\0\0d\0ef"),
            format!("1:2: {utf16le}; save it as UTF-8")
        );
        // One pair of two ends in NUL, or starts with one: half is not more than half.
        assert_eq!(err(b"a\0bc"), "1:2: NUL byte: the file is not text");
        assert_eq!(err(b"\0abc"), "1:1: NUL byte: the file is not text");
    }

    /// Before the first NUL of a UTF-16 file the bytes may not be UTF-8 (`é` is `E9 00`): the
    /// column is then counted in bytes from the line's start.
    #[test]
    fn a_column_before_bytes_that_are_not_utf8_counts_bytes() {
        assert_eq!(
            err(b"a\n\xE9\0x\0y\0z\0"),
            "2:2: the file looks like UTF-16 LE (it has NUL bytes between its characters); \
             save it as UTF-8"
        );
    }

    #[test]
    fn a_stray_nul_byte_is_located() {
        assert_eq!(
            err(b"id: a\nti\0tle: b\n"),
            "2:3: NUL byte: the file is not text"
        );
    }
}
