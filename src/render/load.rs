//! Loading the templates folder: `<kind>/<name>.<locale>.hbs` files (and their `.params.toml`),
//! each part registered, the problems of every file listed together.

use super::*;

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub(super) fn valid_locale(s: &str) -> bool {
    let mut tags = s.split('-');
    let lang_ok = tags
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    lang_ok
        && tags.all(|t| (2..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

pub(super) fn sorted_entries(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    v.sort_by_key(std::fs::DirEntry::file_name);
    Ok(v)
}

pub(super) fn hidden(e: &std::fs::DirEntry) -> bool {
    e.file_name().to_string_lossy().starts_with('.')
}

impl Templates {
    /// Load and compile every template under `dir`. On failure, every problem found, each
    /// naming its file (and line where there is one).
    pub fn load(dir: &Path, cfg: &RenderConfig) -> Result<Templates, Vec<String>> {
        let mut errors = Vec::new();
        let time_zone = match cfg.time_zone.parse::<Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                errors.push(format!(
                    "render.time_zone: `{}` is not an IANA time zone name; use one such as Asia/Shanghai, Asia/Singapore, Europe/Berlin or UTC",
                    cfg.time_zone
                ));
                Tz::UTC
            }
        };
        let mut t = Templates {
            html: registry(time_zone, true),
            plain: registry(time_zone, false),
            by_name: BTreeMap::new(),
            dir: dir.to_path_buf(),
            time_zone,
            sms_max_segments: cfg.sms_max_segments,
        };
        let kinds = match sorted_entries(dir) {
            Ok(k) => k,
            Err(e) => {
                errors.push(format!(
                    "{}: cannot read the templates folder ({e}); set [paths] templates in the configuration",
                    dir.display()
                ));
                return Err(errors);
            }
        };
        for k in kinds.iter().filter(|e| !hidden(e)) {
            let path = k.path();
            if path.is_dir() {
                t.load_kind(&path, &mut errors);
            } else if path.extension().is_some_and(|x| x == "hbs") {
                errors.push(format!(
                    "{}: not in a kind folder; {NAMING}",
                    path.display()
                ));
            }
        }
        t.check_versions_agree(&mut errors);
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    fn load_kind(&mut self, kind_dir: &Path, errors: &mut Vec<String>) {
        let kind = kind_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !valid_name(&kind) {
            errors.push(format!(
                "{}: `{kind}` is not a kind; {NAMING}",
                kind_dir.display()
            ));
            return;
        }
        let files = match sorted_entries(kind_dir) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!(
                    "{}: cannot read the folder ({e})",
                    kind_dir.display()
                ));
                return;
            }
        };
        for f in files.iter().filter(|e| !hidden(e)) {
            let path = f.path();
            if path.is_dir() {
                errors.push(format!(
                    "{}: templates are one folder deep; {NAMING}",
                    path.display()
                ));
                continue;
            }
            let file_name = f.file_name().to_string_lossy().into_owned();
            let Some(stem) = file_name.strip_suffix(".hbs") else {
                continue; // READMEs and the like
            };
            match stem.split_once('.') {
                Some((name, locale)) if valid_name(name) && valid_locale(locale) => {
                    self.load_file(&path, &format!("{kind}/{name}"), locale, errors);
                }
                _ => errors.push(format!("{}: {NAMING}", path.display())),
            }
        }
    }

    fn load_file(&mut self, path: &Path, name: &str, locale: &str, errors: &mut Vec<String>) {
        let at = path.display();
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{at}: cannot read ({e}); templates are UTF-8 text"));
                return;
            }
        };
        let existing = self
            .by_name
            .get(name)
            .and_then(|v| v.get(&locale.to_ascii_lowercase()));
        if let Some(other) = existing {
            errors.push(format!(
                "{at}: the same locale as {} (locales ignore case): keep one",
                other.file.display()
            ));
            return;
        }
        let parts = match sections::split(&source) {
            Ok(p) => p,
            Err(es) => {
                errors.extend(es.into_iter().map(|(l, m)| format!("{at}:{l}: {m}")));
                return;
            }
        };
        let mut version = Version {
            file: path.to_path_buf(),
            locale: locale.to_string(),
            parts: BTreeMap::new(),
            params: Vec::new(),
        };
        let mut ok = true;
        for p in parts {
            if p.part == Part::Params {
                ok &= self.load_params(name, locale, &p, &mut version, errors, &at.to_string());
                continue;
            }
            let reg = if p.part == Part::Html {
                &mut self.html
            } else {
                &mut self.plain
            };
            match reg.register_template_string(&reg_name(name, locale, p.part), &p.body) {
                Ok(()) => {
                    version.parts.insert(p.part, p.marker_line);
                }
                Err(e) => {
                    ok = false;
                    let line = e.pos().map_or(format!("{}", p.marker_line + 1), |(l, c)| {
                        format!("{}:{c}", p.marker_line + l)
                    });
                    let hint = match e.reason() {
                        handlebars::TemplateErrorReason::InvalidSyntax(_) => {
                            "; check that each {{ is closed by }} and each {{#block}} by its {{/block}}"
                        }
                        _ => "",
                    };
                    errors.push(format!(
                        "{at}:{line}: {}{hint} (in the {} part)",
                        e.reason(),
                        p.part
                    ));
                }
            }
        }
        if ok {
            self.by_name
                .entry(name.to_string())
                .or_default()
                .insert(locale.to_ascii_lowercase(), version);
        }
    }

    /// The `params` part: one `key=value` line per parameter, the value a template of its own.
    /// The keys are fixed here, from the file; whatever a value renders to (a title with line
    /// breaks and `=` in it) stays that one parameter's value.
    fn load_params(
        &mut self,
        name: &str,
        locale: &str,
        p: &sections::PartSource,
        version: &mut Version,
        errors: &mut Vec<String>,
        at: &str,
    ) -> bool {
        let mut ok = true;
        let lines = match sections::param_lines(&p.body) {
            Ok(l) => l,
            Err(es) => {
                for (l, m) in es {
                    errors.push(format!(
                        "{at}:{}: {m} (in the params part)",
                        p.marker_line + l
                    ));
                }
                return false;
            }
        };
        for (l, key, value) in lines {
            let line = p.marker_line + l;
            if version.params.iter().any(|(k, _)| *k == key) {
                errors.push(format!(
                    "{at}:{line}: the parameter `{key}` is given twice (in the params part)"
                ));
                ok = false;
                continue;
            }
            match self
                .plain
                .register_template_string(&param_name(name, locale, &key), value)
            {
                Ok(()) => version.params.push((key, line)),
                Err(e) => {
                    ok = false;
                    errors.push(format!(
                        "{at}:{line}: {} (in the params part; each parameter is one line, so a {{{{#block}}}} must close on the line it opens)",
                        e.reason()
                    ));
                }
            }
        }
        if ok {
            version.parts.insert(Part::Params, p.marker_line);
        }
        ok
    }

    /// Every locale of a template must have the same parts, or a channel works in one language
    /// and fails in another.
    fn check_versions_agree(&self, errors: &mut Vec<String>) {
        for versions in self.by_name.values() {
            let mut it = versions.values();
            let Some(first) = it.next() else { continue };
            let want: Vec<Part> = first.parts.keys().copied().collect();
            for v in it {
                let have: Vec<Part> = v.parts.keys().copied().collect();
                if have != want {
                    errors.push(format!(
                        "{}: has parts [{}] but {} has [{}]: every language of a message needs the same parts",
                        v.file.display(),
                        join_parts(&have),
                        first.file.display(),
                        join_parts(&want)
                    ));
                }
            }
        }
    }
}
