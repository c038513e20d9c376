//! Pure domain types and rules: no I/O, no async.
//!
//! Raw strings from the outside world are parsed into these types once, at the edge (config
//! loading, HTTP extraction, CLI parsing); everything inside works with validated values.

/// A closed set of names as an enum: `as_str`, `Display`, `FromStr` naming the choices (the
/// input is trimmed), serde under the same names, `utoipa::ToSchema`, and `ALL`; `what` names
/// the set in the error ("a clock"). Variants are ordered as written (`Ord` follows `ALL`).
/// Derives `Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash`; add others (e.g.
/// `Default` with `#[default]` on a variant) as attributes. Every module may use it: outside
/// `domain`, `use crate::domain::string_enum;`. The one way to write a set of names: an enum
/// that needs something else (a case-insensitive parse, another order, another error) says so
/// where it is written by hand. Each name is a string literal, taken as a token tree: taken as
/// a `literal` fragment, utoipa's derive does not see the variant's `serde(rename)` and the
/// OpenAPI document would name the Rust variants.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? } what = $what:literal) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
        )]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        concat!("`{}` is not ", $what, "; use one of: {}"),
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

pub mod alert;
pub mod audit;
pub mod classify;
pub mod cron;
pub mod drill;
pub mod duration;
pub mod facts;
pub mod heartbeat;
pub mod incident;
pub mod keyring;
pub mod message;
pub mod notice;
pub mod playbook;
pub mod records;
pub mod regulation;
pub mod silence;
pub mod source;
pub mod text;
pub mod time;

pub use alert::{AlertStatus, NewAlert};
pub use facts::Facts;
pub use incident::{Category, Severity, Status};
