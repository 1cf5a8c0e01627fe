//! Reading a JWT's `exp` without verifying it, so the client can ask for a
//! fresh token before the server closes the connection with 4001.

/// The `exp` claim (seconds since the Unix epoch) of a JWT, if it has one.
pub fn expiry(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let text = String::from_utf8(base64url_decode(payload)?).ok()?;
    // Only `exp` is read (a `null` one is none); the payload must be a JSON
    // object with `exp` at most once.
    let mut exp = None;
    let mut seen = false;
    crate::json::Reader::document(&text, |r| {
        r.object(|r, key| {
            if key != "exp" {
                return r.skip();
            }
            if std::mem::replace(&mut seen, true) {
                return None;
            }
            exp = r.nullable(crate::json::Reader::u64)?;
            Some(())
        })
    })?;
    exp
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs use; tolerates padding.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_from_a_jwt() {
        // {"alg":"HS256","typ":"JWT"} . {"sub":"alice","name":"Alice","exp":1795346100} . sig
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                     eyJzdWIiOiJhbGljZSIsIm5hbWUiOiJBbGljZSIsImV4cCI6MTc5NTM0NjEwMH0.c2ln";
        assert_eq!(expiry(token), Some(1_795_346_100));
    }

    #[test]
    fn tokens_without_exp_or_malformed_have_none() {
        // {"sub":"a","name":"A"}
        assert_eq!(expiry("e30.eyJzdWIiOiJhIiwibmFtZSI6IkEifQ.x"), None);
        assert_eq!(expiry("not a jwt"), None);
        assert_eq!(expiry("a.!!!.b"), None);
        // {"exp":null}, {"exp":1.5}, {"exp":1,"exp":2}, [1]
        for payload in ["eyJleHAiOm51bGx9", "eyJleHAiOjEuNX0", "eyJleHAiOjEsImV4cCI6Mn0", "WzFd"] {
            assert_eq!(expiry(&format!("e30.{payload}.x")), None, "{payload}");
        }
    }

    #[test]
    fn decodes_base64url() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("_-8").unwrap(), [0xff, 0xef]);
    }
}
