//! Message templates (handlebars): `templates/<kind>/<name>.<locale>.hbs`.
//!
//! (Being built.)
