//! Emotion label sets and name normalisation.
//!
//! Datasets and models spell the same emotion differently ("anger" / "angry", "happiness" /
//! "happy", "fearful" / "fear"). Every comparison of labels goes through [`normalize`], which maps
//! a name to one canonical key, so a set can keep its own display names (face-api says
//! "fearful") and still recognise the other spellings.

/// Spelling variants → canonical key. Keys are lowercase, single-spaced.
const SYNONYMS: &[(&str, &str)] = &[
    ("happiness", "happy"),
    ("happy", "happy"),
    ("joy", "happy"),
    ("sadness", "sad"),
    ("sad", "sad"),
    ("anger", "angry"),
    ("angry", "angry"),
    ("surprised", "surprise"),
    ("surprise", "surprise"),
    ("fearful", "fear"),
    ("fear", "fear"),
    ("afraid", "fear"),
    ("scared", "fear"),
    ("disgusted", "disgust"),
    ("disgust", "disgust"),
    ("neutral", "neutral"),
    ("neutrality", "neutral"),
    ("contempt", "contempt"),
    ("contemptuous", "contempt"),
    ("anxiety", "anxiety"),
    ("anxious", "anxiety"),
    ("helplessness", "helplessness"),
    ("helpless", "helplessness"),
    ("disappointment", "disappointment"),
    ("disappointed", "disappointment"),
];

/// Canonical key of a label: trimmed, lowercased, inner whitespace collapsed, synonyms resolved.
/// Unknown names keep their normalised spelling, so user-defined labels still compare equal to
/// themselves regardless of case or spacing.
pub fn normalize(name: &str) -> String {
    let key = name
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    SYNONYMS
        .iter()
        .find(|(variant, _)| *variant == key)
        .map(|(_, canon)| canon.to_string())
        .unwrap_or(key)
}

/// An ordered set of emotion classes, optionally with class priors.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    names: Vec<String>,
    keys: Vec<String>,
    priors: Option<Vec<f64>>,
}

impl LabelSet {
    /// A user-defined set. Names that normalise to the same key are rejected so that
    /// [`LabelSet::canonical`] is unambiguous; priors, if given, must be one per class,
    /// non-negative, with a positive sum (they are normalised to sum to 1).
    pub fn custom(names: &[&str], priors: Option<&[f64]>) -> Result<Self, String> {
        let names: Vec<String> = names.iter().map(|s| s.trim().to_string()).collect();
        let keys: Vec<String> = names.iter().map(|n| normalize(n)).collect();
        for (i, k) in keys.iter().enumerate() {
            if k.is_empty() {
                return Err("empty label name".into());
            }
            if keys[..i].contains(k) {
                return Err(format!("duplicate label '{}'", names[i]));
            }
        }
        let priors = match priors {
            None => None,
            Some(p) => {
                if p.len() != names.len() {
                    return Err(format!("{} priors for {} labels", p.len(), names.len()));
                }
                let sum: f64 = p.iter().sum();
                // NaN fails both tests.
                if p.iter().any(|&x| x.is_nan() || x < 0.0) || sum.is_nan() || sum <= 0.0 {
                    return Err("priors must be non-negative with a positive sum".into());
                }
                Some(p.iter().map(|x| x / sum).collect())
            }
        };
        Ok(Self {
            names,
            keys,
            priors,
        })
    }

    fn builtin(names: &[&str]) -> Self {
        Self::custom(names, None).expect("built-in label sets are valid")
    }

    /// A set named on a command line: `dfew`, `ferv39k`, `mafw`, `faceapi`, or a comma-separated
    /// list of at least two labels.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        match spec.trim().to_lowercase().as_str() {
            "dfew" => Ok(Self::dfew()),
            "ferv39k" => Ok(Self::ferv39k()),
            "mafw" => Ok(Self::mafw()),
            "faceapi" | "face-api" => Ok(Self::face_api()),
            _ => {
                let names: Vec<&str> = spec.split(',').map(str::trim).collect();
                if names.len() < 2 {
                    return Err(format!(
                        "labels '{spec}' are neither dfew, ferv39k, mafw, faceapi nor a list of at least two labels"
                    ));
                }
                Self::custom(&names, None)
            }
        }
    }

    /// DFEW and FERV39k: the seven basic emotions.
    pub fn dfew() -> Self {
        Self::builtin(&[
            "happy", "sad", "neutral", "angry", "surprise", "disgust", "fear",
        ])
    }

    /// FERV39k uses the same seven classes as DFEW.
    pub fn ferv39k() -> Self {
        Self::dfew()
    }

    /// MAFW: the seven basic emotions plus four compound ones.
    pub fn mafw() -> Self {
        Self::builtin(&[
            "happy",
            "sad",
            "neutral",
            "angry",
            "surprise",
            "disgust",
            "fear",
            "contempt",
            "anxiety",
            "helplessness",
            "disappointment",
        ])
    }

    /// face-api.js expression net output order and spelling.
    pub fn face_api() -> Self {
        Self::builtin(&crate::face::EXPRESSIONS)
    }

    /// The set of classes named in `labels` (e.g. a ground-truth column), one class per
    /// canonical key, ordered alphabetically by key so the result does not depend on row order.
    /// Display names are the canonical keys.
    pub fn from_observed<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        let mut keys: Vec<String> = labels
            .into_iter()
            .map(normalize)
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        Self {
            names: keys.clone(),
            keys,
            priors: None,
        }
    }

    /// Index of the class `name` refers to, after case/whitespace/synonym normalisation.
    pub fn canonical(&self, name: &str) -> Option<usize> {
        let key = normalize(name);
        self.keys.iter().position(|k| *k == key)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Class priors (summing to 1), when known.
    pub fn priors(&self) -> Option<&[f64]> {
        self.priors.as_deref()
    }
}
