//! Reads a verified token's claims under the configured names (`id` or
//! `user_id` for the user, `ADMIN` for the admin role...) into Roomcast's
//! [`Claims`].

use roomcast_shared::Claims;
use roomcast_shared::room::ADMIN_ROLE;
use serde_json::{Map, Value};

use super::TokenError;
use crate::config::ClaimNames;

/// Roomcast's claims from a token's JSON claims. A claim of the wrong type
/// refuses the token rather than being guessed at.
pub(super) fn read(
    mut json: Map<String, Value>,
    names: &ClaimNames,
    admin_role: &str,
) -> Result<Claims, TokenError> {
    let sub = match json.remove(&names.user_id) {
        Some(Value::String(id)) => id,
        // Django and Node backends often put the database's integer id.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(wrong_type(&names.user_id, "a string or an integer")),
        None => return Err(TokenError::Invalid(format!("missing the {} claim", names.user_id))),
    };
    let name = optional_string(&mut json, &names.name)?.unwrap_or_else(|| sub.clone());
    let role = role(json.remove(&names.role), &names.role, admin_role)?;
    let avatar = optional_string(&mut json, &names.avatar)?;
    let rooms = match json.remove(&names.rooms) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(pattern) => Ok(pattern),
                    _ => Err(wrong_type(&names.rooms, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(wrong_type(&names.rooms, "a list of strings")),
    };
    Ok(Claims {
        sub,
        name,
        role,
        avatar,
        rooms,
        exp: time(&json, "exp")?,
        nbf: time(&json, "nbf")?,
        iat: time(&json, "iat")?,
    })
}

/// The role: a string, or a list (the admin role if it is among them, else
/// the first). The configured admin value, in any case, becomes Roomcast's
/// `admin`; any other value that reads `admin` is dropped, so that an
/// application whose admin role is called otherwise cannot grant it by
/// accident.
fn role(value: Option<Value>, claim: &str, admin_role: &str) -> Result<Option<String>, TokenError> {
    let is_admin = |role: &str| role.eq_ignore_ascii_case(admin_role);
    let role = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(role)) => Some(role),
        Some(Value::Array(roles)) => {
            let roles = roles
                .into_iter()
                .map(|role| match role {
                    Value::String(role) => Ok(role),
                    _ => Err(wrong_type(claim, "a string or a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            roles.iter().find(|role| is_admin(role)).or(roles.first()).cloned()
        }
        Some(_) => return Err(wrong_type(claim, "a string or a list of strings")),
    };
    Ok(match role {
        Some(role) if is_admin(&role) => Some(ADMIN_ROLE.to_owned()),
        Some(role) if role.eq_ignore_ascii_case(ADMIN_ROLE) => None,
        role => role,
    })
}

fn optional_string(
    json: &mut Map<String, Value>,
    claim: &str,
) -> Result<Option<String>, TokenError> {
    match json.remove(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(wrong_type(claim, "a string")),
    }
}

/// A time claim in seconds. The signature check has already refused one
/// that is not a number; a fractional one is taken to the second before.
fn time(json: &Map<String, Value>, claim: &str) -> Result<Option<u64>, TokenError> {
    match json.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(seconds)) if seconds.is_finite() && seconds >= 0.0 => {
                Ok(Some(seconds.floor() as u64))
            }
            _ => Err(wrong_type(claim, "a positive number of seconds")),
        },
        Some(_) => Err(wrong_type(claim, "a number of seconds")),
    }
}

fn wrong_type(claim: &str, expected: &str) -> TokenError {
    TokenError::Invalid(format!("the {claim} claim must be {expected}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read_as(json: Value, names: &ClaimNames, admin: &str) -> Result<Claims, TokenError> {
        read(json.as_object().unwrap().clone(), names, admin)
    }

    #[test]
    fn numeric_ids_roles_in_any_case_and_lists() {
        let names = ClaimNames { user_id: "id".into(), ..ClaimNames::default() };
        let claims = read_as(json!({"id": 42, "role": "ADMIN"}), &names, "admin").unwrap();
        assert_eq!((claims.sub.as_str(), claims.name.as_str()), ("42", "42"));
        assert_eq!(claims.role.as_deref(), Some(ADMIN_ROLE));
        let listed = read_as(json!({"id": "u", "role": ["staff", "Admin"]}), &names, "admin");
        assert_eq!(listed.unwrap().role.as_deref(), Some(ADMIN_ROLE));
        assert!(read_as(json!({"id": 4.5}), &names, "admin").is_err());
        assert!(read_as(json!({"sub": "u"}), &names, "admin").is_err());
    }

    #[test]
    fn admin_is_only_the_configured_value() {
        let names = ClaimNames::default();
        let claims = read_as(json!({"sub": "u", "role": "admin"}), &names, "superuser").unwrap();
        assert_eq!(claims.role, None, "`admin` is not this application's admin role");
        let claims = read_as(json!({"sub": "u", "role": "SuperUser"}), &names, "superuser");
        assert_eq!(claims.unwrap().role.as_deref(), Some(ADMIN_ROLE));
    }

    #[test]
    fn claims_of_the_wrong_type_refuse_the_token() {
        let names = ClaimNames::default();
        for bad in [
            json!({"sub": "u", "name": 7}),
            json!({"sub": "u", "rooms": "general"}),
            json!({"sub": "u", "rooms": [1]}),
            json!({"sub": "u", "role": {"admin": true}}),
            json!({"sub": ["u"]}),
        ] {
            assert!(read_as(bad.clone(), &names, "admin").is_err(), "{bad}");
        }
    }
}
