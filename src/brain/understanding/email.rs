//! Email addresses, written ("jane@acme.com") or spoken the way speech
//! recognition transcribes them ("jane at acme dot com", "j a n e dot doe
//! at acme dot co dot uk").

/// Words that join the parts of a spoken address.
fn connector(word: &str) -> Option<&'static str> {
    match word {
        "dot" | "period" | "point" => Some("."),
        "underscore" => Some("_"),
        "dash" | "hyphen" | "minus" => Some("-"),
        "plus" => Some("+"),
        _ => None,
    }
}

fn is_address_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

/// Lowercase words split on whitespace, trimmed of sentence punctuation.
fn spoken_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| matches!(c, ',' | ';' | '?' | '!' | '"' | '(' | ')' | ':'))
                .to_lowercase()
        })
        .map(|w| w.trim_end_matches('.').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A plausible address: something before the `@`, a dotted domain, and an
/// alphabetic top-level domain of two letters or more.
pub fn is_valid_email(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.split_once('@') else {
        return false;
    };
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.contains("..")
        && is_address_word(local)
        && is_address_word(domain)
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
}

/// Join the spoken local part that ends just before `at`: connectors bind
/// neighbouring words, and runs of single letters are a spelled name.
fn local_part(words: &[String], at: usize) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut i = at;
    let mut expecting_word = true;
    while i > 0 {
        let word = &words[i - 1];
        if expecting_word {
            if !is_address_word(word) || connector(word).is_some() {
                break;
            }
            parts.push(word.clone());
            expecting_word = false;
            // A spelled run: "j o h n" binds without connectors.
            if word.chars().count() == 1 {
                while i > 1
                    && words[i - 2].chars().count() == 1
                    && words[i - 2].chars().all(|c| c.is_ascii_alphanumeric())
                {
                    parts.push(words[i - 2].clone());
                    i -= 1;
                }
            }
        } else if let Some(joiner) = connector(word) {
            parts.push(joiner.to_owned());
            expecting_word = true;
        } else {
            break;
        }
        i -= 1;
    }
    if expecting_word && !parts.is_empty() {
        parts.pop(); // a dangling connector: "dot at" is not an address
    }
    parts.reverse();
    let local = parts.concat();
    (!local.is_empty()).then_some(local)
}

/// Join the spoken domain after `at`: word (dot word)+.
fn domain_part(words: &[String], from: usize) -> Option<String> {
    let mut domain = String::new();
    let mut i = from;
    let mut expecting_word = true;
    while let Some(word) = words.get(i) {
        if expecting_word {
            if !is_address_word(word) || connector(word).is_some() {
                break;
            }
            domain.push_str(word);
            expecting_word = false;
        } else if matches!(word.as_str(), "dot" | "period" | "point") {
            domain.push('.');
            expecting_word = true;
        } else if matches!(word.as_str(), "dash" | "hyphen") {
            domain.push('-');
            expecting_word = true;
        } else {
            break;
        }
        i += 1;
    }
    if expecting_word {
        domain.pop();
    }
    // Trim trailing words until the domain ends with a real TLD.
    while !domain.is_empty() && !is_valid_email(&format!("x@{domain}")) {
        match domain.rfind('.') {
            Some(cut) => domain.truncate(cut),
            None => return None,
        }
    }
    (!domain.is_empty()).then_some(domain)
}

/// The first email address in the utterance, normalised to lowercase.
pub fn email(text: &str) -> Option<String> {
    let words = spoken_words(text);
    for (i, word) in words.iter().enumerate() {
        if word.contains('@') && is_valid_email(word) {
            return Some(word.clone());
        }
        if word == "at" || word == "@" {
            let (Some(local), Some(domain)) = (local_part(&words, i), domain_part(&words, i + 1))
            else {
                continue;
            };
            let candidate = format!("{local}@{domain}");
            if is_valid_email(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}
