//! Where settings come from: the process environment, over an optional `KEY=VALUE` file named by
//! `TIERLINE_CONFIG_FILE` (Kubernetes mounts one from a ConfigMap). Reading is done through
//! [`ConfigReader`], which collects every problem so that a bad start lists them all at once.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use super::Secret;

/// Names the optional settings file.
pub const CONFIG_FILE_VAR: &str = "TIERLINE_CONFIG_FILE";

/// Every setting is named `TIERLINE_<NAME>`.
pub const PREFIX: &str = "TIERLINE_";

/// The settings could not be loaded; `problems` lists each one.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per bad or missing setting.
    pub problems: Vec<String>,
}

/// The raw settings: a map from variable name to value.
#[derive(Clone, Default)]
pub struct ConfigSource {
    values: HashMap<String, String>,
}

impl fmt::Debug for ConfigSource {
    // Values may be secrets: show only the names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.values.keys().collect();
        keys.sort();
        f.debug_struct("ConfigSource").field("keys", &keys).finish()
    }
}

impl ConfigSource {
    /// Reads `TIERLINE_*` variables from the environment, over the file named by
    /// `TIERLINE_CONFIG_FILE` when it is set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_vars(std::env::vars())
    }

    /// As [`ConfigSource::from_env`], from the given variables (tests use this).
    pub fn from_env_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = vars
            .into_iter()
            .filter(|(key, _)| key.starts_with(PREFIX))
            .collect();
        let mut values = HashMap::new();
        if let Some(path) = env.get(CONFIG_FILE_VAR).filter(|path| !path.is_empty()) {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
                problems: vec![format!("{CONFIG_FILE_VAR}: cannot read {path}: {error}")],
            })?;
            values = parse_env_file(&text).map_err(|problems| ConfigError { problems })?;
        }
        values.extend(env);
        Ok(Self { values })
    }

    /// A source holding exactly these settings, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }

    /// Sets one value, replacing any earlier one.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    /// Starts reading typed values.
    pub fn reader(&self) -> ConfigReader<'_> {
        ConfigReader {
            source: self,
            problems: Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }
}

/// Parses `KEY=VALUE` lines; `#` starts a comment line; values may be wrapped in double quotes.
fn parse_env_file(text: &str) -> Result<HashMap<String, String>, Vec<String>> {
    let mut values = HashMap::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => {
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                values.insert(key.trim().to_owned(), value.to_owned());
            }
            None => problems.push(format!(
                "{CONFIG_FILE_VAR}: line {}: expected KEY=VALUE",
                number + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// Reads typed settings and records every problem instead of stopping at the first.
#[derive(Debug)]
pub struct ConfigReader<'a> {
    source: &'a ConfigSource,
    problems: Vec<String>,
}

impl ConfigReader<'_> {
    /// A string setting with a default.
    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.source.get(key).unwrap_or(default).to_owned()
    }

    /// A string setting that may be absent.
    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        self.source.get(key).map(str::to_owned)
    }

    /// A required secret; its value never appears in errors or logs.
    pub fn required_secret(&mut self, key: &str) -> Secret {
        match self.source.get(key) {
            Some(value) => Secret::new(value),
            None => {
                self.problems.push(format!("{key} is required"));
                Secret::new("")
            }
        }
    }

    /// A secret that may be absent.
    pub fn optional_secret(&mut self, key: &str) -> Option<Secret> {
        self.source.get(key).map(Secret::new)
    }

    /// Any `FromStr` setting with a default.
    pub fn parse<T>(&mut self, key: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.optional_parse(key).unwrap_or(default)
    }

    /// Any `FromStr` setting that may be absent.
    pub fn optional_parse<T>(&mut self, key: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.source.get(key)?;
        match raw.trim().parse() {
            Ok(value) => Some(value),
            Err(error) => {
                self.problems
                    .push(format!("{key}={raw:?} is not valid: {error}"));
                None
            }
        }
    }

    /// A whole number within `range`, with a default.
    pub fn number_in<T>(&mut self, key: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        let value = self.parse(key, default);
        if !range.contains(&value) {
            self.problems.push(format!(
                "{key}={value} must be between {} and {}",
                range.start(),
                range.end()
            ));
            return default;
        }
        value
    }

    /// A boolean: true/false, yes/no, on/off, 1/0.
    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(raw) = self.source.get(key) else {
            return default;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => true,
            "false" | "no" | "off" | "0" => false,
            _ => {
                self.problems
                    .push(format!("{key}={raw:?} is not a boolean (true or false)"));
                default
            }
        }
    }

    /// A duration such as `250ms`, `5s`, `2m`, `1h`; a bare number is seconds.
    pub fn duration(&mut self, key: &str, default: Duration) -> Duration {
        let Some(raw) = self.source.get(key) else {
            return default;
        };
        match parse_duration(raw) {
            Some(value) => value,
            None => {
                self.problems.push(format!(
                    "{key}={raw:?} is not a duration (for example 250ms, 5s, 2m, 1h)"
                ));
                default
            }
        }
    }

    /// One of a fixed set of lower-case words.
    pub fn choice<'c>(&mut self, key: &str, default: &'c str, choices: &[&'c str]) -> &'c str {
        let Some(raw) = self.source.get(key) else {
            return default;
        };
        let lowered = raw.trim().to_ascii_lowercase();
        match choices.iter().find(|choice| **choice == lowered) {
            Some(choice) => choice,
            None => {
                self.problems.push(format!(
                    "{key}={raw:?} must be one of: {}",
                    choices.join(", ")
                ));
                default
            }
        }
    }

    /// Records a problem found by cross-field validation.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Ends reading: `Ok` when every setting was valid, else every problem at once.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(number)),
        "" | "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(number.checked_mul(3600)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let source = ConfigSource::from_pairs([("TIERLINE_A", "x"), ("TIERLINE_B", "maybe")]);
        let mut reader = source.reader();
        let _: u16 = reader.parse("TIERLINE_A", 1);
        let _ = reader.bool("TIERLINE_B", false);
        let _ = reader.required_secret("TIERLINE_C");
        let error = reader.finish().expect_err("three problems");
        assert_eq!(error.problems.len(), 3, "{error}");
        assert!(error.to_string().contains("TIERLINE_C is required"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("tierline-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("settings.env");
        std::fs::write(
            &file,
            "# comment\nTIERLINE_X=\"from-file\"\nTIERLINE_Y=file\n",
        )
        .expect("write");
        let source = ConfigSource::from_env_vars([
            (CONFIG_FILE_VAR.to_owned(), file.display().to_string()),
            ("TIERLINE_Y".to_owned(), "env".to_owned()),
            ("UNRELATED".to_owned(), "ignored".to_owned()),
        ])
        .expect("loads");
        let mut reader = source.reader();
        assert_eq!(reader.string("TIERLINE_X", ""), "from-file");
        assert_eq!(reader.string("TIERLINE_Y", ""), "env");
        assert_eq!(reader.optional_string("UNRELATED"), None);
    }
}
