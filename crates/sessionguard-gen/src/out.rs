//! Writing JSON text fast: literals, numbers, timestamps in each vendor's form, and the
//! identifier shapes the vendors use (UUIDs, AWS key ids, Okta ids, base64 token hashes).
//!
//! Everything appends to a reused `Vec<u8>`; nothing allocates. Strings from the generator's
//! own pools are plain ASCII without quotes or backslashes and are written as they are; text
//! that may need escaping goes through [`esc`].

use super::rng::hash2;

/// A JSON body writer; `None` writes `null` or leaves the member out.
pub type Body<'x> = Option<&'x dyn Fn(&mut Vec<u8>)>;

/// Appends a literal.
#[inline]
pub fn s(b: &mut Vec<u8>, text: &str) {
    b.extend_from_slice(text.as_bytes());
}

/// Appends a JSON string (quoted), escaping what JSON requires.
pub fn q(b: &mut Vec<u8>, text: &str) {
    b.push(b'"');
    esc(b, text);
    b.push(b'"');
}

/// Appends `text` escaped for the inside of a JSON string.
pub fn esc(b: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let replacement: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                b.extend_from_slice(&bytes[start..i]);
                b.extend_from_slice(b"\\u00");
                b.push(HEX[usize::from(c >> 4)]);
                b.push(HEX[usize::from(c & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        b.extend_from_slice(&bytes[start..i]);
        b.extend_from_slice(replacement);
        start = i + 1;
    }
    b.extend_from_slice(&bytes[start..]);
}

/// Appends an unsigned integer.
#[inline]
pub fn u(b: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

/// Appends a signed integer.
#[inline]
pub fn i(b: &mut Vec<u8>, n: i64) {
    if n < 0 {
        b.push(b'-');
    }
    u(b, n.unsigned_abs());
}

/// Appends `n` zero-padded to `width` digits.
#[inline]
pub fn pad(b: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut x = n;
    let mut i = tmp.len();
    while x > 0 && i > 0 {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    let start = tmp.len() - width.max(tmp.len() - i);
    b.extend_from_slice(&tmp[start..]);
}

/// Appends an IPv4 address held as a big-endian `u32`.
#[inline]
pub fn ip(b: &mut Vec<u8>, addr: u32) {
    let [a, bb, c, d] = addr.to_be_bytes();
    u(b, u64::from(a));
    b.push(b'.');
    u(b, u64::from(bb));
    b.push(b'.');
    u(b, u64::from(c));
    b.push(b'.');
    u(b, u64::from(d));
}

/// A fixed-point decimal with `decimals` places (coordinates, latencies).
pub fn decimal(b: &mut Vec<u8>, value: i64, decimals: u32) {
    let scale = 10i64.pow(decimals);
    if value < 0 {
        b.push(b'-');
    }
    let v = value.unsigned_abs();
    u(b, v / scale as u64);
    if decimals > 0 {
        b.push(b'.');
        pad(b, v % scale as u64, decimals as usize);
    }
}

pub const HEX: &[u8; 16] = b"0123456789abcdef";
pub const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
/// AWS unique ids and access keys use upper-case letters and the digits 2–7.
pub const AWS_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `n` lower-case hex digits derived from `seed`.
pub fn hex(b: &mut Vec<u8>, seed: u64, n: usize) {
    hex_with(b, seed, n, HEX);
}

/// `n` upper-case hex digits derived from `seed`.
pub fn hex_upper(b: &mut Vec<u8>, seed: u64, n: usize) {
    hex_with(b, seed, n, HEX_UPPER);
}

fn hex_with(b: &mut Vec<u8>, seed: u64, n: usize, digits: &[u8; 16]) {
    let mut word = 0u64;
    for k in 0..n {
        if k % 16 == 0 {
            word = hash2(seed, k as u64);
        }
        b.push(digits[(word & 0xf) as usize]);
        word >>= 4;
    }
}

/// `n` characters of `alphabet` derived from `seed`.
pub fn chars(b: &mut Vec<u8>, alphabet: &[u8], seed: u64, n: usize) {
    let len = alphabet.len() as u64;
    let mut word = 0u64;
    for k in 0..n {
        if k % 8 == 0 {
            word = hash2(seed, 0x100 + k as u64);
        }
        b.push(alphabet[(((word & 0xff) * len) >> 8) as usize]);
        word >>= 8;
    }
}

/// A random-looking version-4 UUID derived from `seed`.
pub fn uuid(b: &mut Vec<u8>, seed: u64) {
    let hi = hash2(seed, 0x7575_6964);
    let lo = hash2(seed, 0x6469_7575);
    let mut digits = [0u8; 32];
    for k in 0..16 {
        digits[k] = HEX[((hi >> (4 * k)) & 0xf) as usize];
        digits[16 + k] = HEX[((lo >> (4 * k)) & 0xf) as usize];
    }
    digits[12] = b'4';
    digits[16] = b"89ab"[(lo & 3) as usize];
    b.extend_from_slice(&digits[0..8]);
    b.push(b'-');
    b.extend_from_slice(&digits[8..12]);
    b.push(b'-');
    b.extend_from_slice(&digits[12..16]);
    b.push(b'-');
    b.extend_from_slice(&digits[16..20]);
    b.push(b'-');
    b.extend_from_slice(&digits[20..32]);
}

/// Standard base64 (with padding) of `bytes` pseudo-random bytes derived from `seed`.
pub fn base64(b: &mut Vec<u8>, seed: u64, bytes: usize, url: bool) {
    let table = if url { BASE64_URL } else { BASE64 };
    let mut raw = [0u8; 64];
    let bytes = bytes.min(raw.len());
    for (k, chunk) in raw[..bytes].chunks_mut(8).enumerate() {
        let word = hash2(seed, 0x6236_3400 + k as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    for chunk in raw[..bytes].chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        b.push(table[(n >> 18) as usize & 63]);
        b.push(table[(n >> 12) as usize & 63]);
        if chunk.len() > 1 {
            b.push(table[(n >> 6) as usize & 63]);
        } else if !url {
            b.push(b'=');
        }
        if chunk.len() > 2 {
            b.push(table[n as usize & 63]);
        } else if !url {
            b.push(b'=');
        }
    }
}

// ------------------------------------------------------------------------------------------
// Time
// ------------------------------------------------------------------------------------------

const MS_PER_DAY: i64 = 86_400_000;

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS` of epoch milliseconds.
fn date_time(b: &mut Vec<u8>, ms: i64) {
    let (y, m, d) = civil(ms.div_euclid(MS_PER_DAY));
    let secs = ms.rem_euclid(MS_PER_DAY) / 1000;
    pad(b, y as u64, 4);
    b.push(b'-');
    pad(b, u64::from(m), 2);
    b.push(b'-');
    pad(b, u64::from(d), 2);
    b.push(b'T');
    pad(b, (secs / 3600) as u64, 2);
    b.push(b':');
    pad(b, (secs / 60 % 60) as u64, 2);
    b.push(b':');
    pad(b, (secs % 60) as u64, 2);
}

/// CloudTrail: whole seconds, `Z` (`2024-11-04T09:00:00Z`).
pub fn time_s(b: &mut Vec<u8>, ms: i64) {
    date_time(b, ms);
    b.push(b'Z');
}

/// Okta and most JSON APIs: milliseconds (`2024-11-04T09:00:00.123Z`).
pub fn time_ms(b: &mut Vec<u8>, ms: i64) {
    date_time(b, ms);
    b.push(b'.');
    pad(b, ms.rem_euclid(1000) as u64, 3);
    b.push(b'Z');
}

/// Kubernetes audit: microseconds (`2024-11-04T09:00:00.123456Z`).
pub fn time_us(b: &mut Vec<u8>, us: i64) {
    date_time(b, us.div_euclid(1000));
    b.push(b'.');
    pad(b, us.rem_euclid(1_000_000) as u64, 6);
    b.push(b'Z');
}

/// A credential's expiry as CloudTrail writes it: `Nov 4, 2024, 10:00:00 AM`.
pub fn aws_expiration(b: &mut Vec<u8>, ms: i64) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil(ms.div_euclid(MS_PER_DAY));
    let secs = ms.rem_euclid(MS_PER_DAY) / 1000;
    let hour = secs / 3600;
    s(b, MONTHS[m as usize - 1]);
    b.push(b' ');
    u(b, u64::from(d));
    s(b, ", ");
    u(b, y as u64);
    s(b, ", ");
    u(
        b,
        if hour % 12 == 0 {
            12
        } else {
            (hour % 12) as u64
        },
    );
    b.push(b':');
    pad(b, (secs / 60 % 60) as u64, 2);
    b.push(b':');
    pad(b, (secs % 60) as u64, 2);
    s(b, if hour < 12 { " AM" } else { " PM" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(text(|b| u(b, 0)), "0");
        assert_eq!(text(|b| i(b, -42)), "-42");
        assert_eq!(text(|b| pad(b, 7, 3)), "007");
        assert_eq!(text(|b| pad(b, 0, 2)), "00");
        assert_eq!(text(|b| decimal(b, -1049903, 4)), "-104.9903");
        assert_eq!(text(|b| ip(b, 0xc633_640a)), "198.51.100.10");
        // 2024-11-04T09:05:07.089Z
        let ms = 1_730_711_107_089;
        assert_eq!(text(|b| time_s(b, ms)), "2024-11-04T09:05:07Z");
        assert_eq!(text(|b| time_ms(b, ms)), "2024-11-04T09:05:07.089Z");
        assert_eq!(
            text(|b| time_us(b, ms * 1000 + 5)),
            "2024-11-04T09:05:07.089005Z"
        );
        assert_eq!(
            text(|b| aws_expiration(b, ms + 12 * 3_600_000)),
            "Nov 4, 2024, 9:05:07 PM"
        );
    }

    #[test]
    fn identifiers_have_their_shapes() {
        let id = text(|b| uuid(b, 5));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let token = text(|b| base64(b, 9, 32, false));
        assert_eq!(token.len(), 44);
        assert!(token.ends_with('='));
        assert_eq!(text(|b| base64(b, 9, 16, true)).len(), 22);
        assert_eq!(text(|b| esc(b, "a\"b\\c\n\u{1}")), "a\\\"b\\\\c\\n\\u0001");
    }
}
