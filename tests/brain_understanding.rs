//! Signal extraction from realistic caller phrasings, including the
//! substring traps a naive matcher falls into.

use voxguard::brain::understanding::{
    Confirmation, Industry, Integration, Question, Urgency, Weekday, extract, extract_answering,
};

#[test]
fn team_size_is_read_from_people_words_around_a_number() {
    let cases: &[(&str, Option<u32>)] = &[
        ("we're about eight people", Some(8)),
        ("We are a team of 12.", Some(12)),
        ("there's fifteen of us", Some(15)),
        ("it's just me right now", Some(1)),
        ("only me, I run it solo", Some(1)),
        ("we have 25 employees", Some(25)),
        ("we're a 40 person team", Some(40)),
        ("about a dozen people would use it", Some(12)),
        ("maybe twenty-five users", Some(25)),
        ("the two of us", Some(2)),
        ("our team is 6", Some(6)),
        ("we've got like thirty seats", Some(30)),
        ("somewhere between five and ten people", Some(10)),
        ("a team of about fifty", Some(50)),
        ("ten or so folks", Some(10)),
        ("a couple of engineers", Some(2)),
        // Not team sizes:
        ("twelve hundred docs a month", None),
        ("we started three years ago", None),
        ("the first one works", None),
        ("no one else uses it", None),
    ];
    for (text, expected) in cases {
        assert_eq!(extract(text).signals.team_size, *expected, "{text:?}");
    }
}

#[test]
fn monthly_volume_is_read_from_document_and_period_words() {
    let cases: &[(&str, Option<u32>)] = &[
        ("twelve hundred docs a month", Some(1200)),
        ("about 3k documents monthly", Some(3000)),
        ("2,500 a month", Some(2500)),
        (
            "we process around five hundred invoices per month",
            Some(500),
        ),
        (
            "roughly two thousand five hundred pages every month",
            Some(2500),
        ),
        ("maybe 1.5k contracts", Some(1500)),
        ("a hundred documents a week", Some(400)),
        ("40 docs a day", Some(840)),
        ("twelve thousand files a year", Some(1000)),
        ("we handle 800", Some(800)),
        ("a few hundred PDF documents", Some(300)),
        ("10,000 claims per month", Some(10000)),
        // Not volumes:
        ("we're about eight people", None),
        ("call me Tuesday at 10", None),
        ("we've been around for twelve years", None),
    ];
    for (text, expected) in cases {
        assert_eq!(extract(text).signals.monthly_volume, *expected, "{text:?}");
    }
}

#[test]
fn team_and_volume_in_one_sentence_do_not_mix() {
    let heard = extract("We're 8 people and we push through twelve hundred docs a month");
    assert_eq!(heard.signals.team_size, Some(8));
    assert_eq!(heard.signals.monthly_volume, Some(1200));
}

#[test]
fn a_bare_number_answers_the_question_just_asked() {
    assert_eq!(extract("a few hundred").signals.monthly_volume, None);
    assert_eq!(
        extract_answering("a few hundred", Some(Question::MonthlyVolume))
            .signals
            .monthly_volume,
        Some(300)
    );
    assert_eq!(
        extract_answering("uh, eight", Some(Question::TeamSize))
            .signals
            .team_size,
        Some(8)
    );
    assert_eq!(
        extract_answering("eight", Some(Question::MonthlyVolume))
            .signals
            .team_size,
        None
    );
}

#[test]
fn integrations_are_whole_words_and_not_negated() {
    use Integration::*;
    let cases: &[(&str, &[Integration])] = &[
        ("we use HubSpot", &[HubSpot]),
        ("Salesforce and Slack, mostly", &[Salesforce, Slack]),
        ("we have some zaps in Zapier", &[Zapier]),
        ("we'd hit your API from our backend", &[Api]),
        (
            "everything lives in Google Drive and Dropbox",
            &[GoogleDrive, Dropbox],
        ),
        ("SharePoint, sadly", &[SharePoint]),
        ("we're on sales force", &[Salesforce]),
        ("hub spot for the CRM", &[HubSpot]),
        ("we post to Microsoft Teams", &[MicrosoftTeams]),
        ("we don't use Slack but we do use HubSpot", &[HubSpot]),
        // Traps: substrings and everyday words.
        ("we need something rapid", &[]),
        ("we're a wholesale distributor", &[]),
        ("our teams drive a lot of paperwork", &[]),
        ("tick the box and we're done", &[]),
        ("we sell capital equipment", &[]),
    ];
    for (text, expected) in cases {
        let found = extract(text).signals.integrations.unwrap_or_default();
        assert_eq!(found, *expected, "{text:?}");
    }
}

#[test]
fn saying_none_answers_the_integrations_question() {
    assert_eq!(
        extract_answering("nothing really", Some(Question::Integrations))
            .signals
            .integrations,
        Some(vec![])
    );
    assert_eq!(extract("nothing really").signals.integrations, None);
}

#[test]
fn urgency_maps_timelines_to_buckets() {
    let cases: &[(&str, Option<Urgency>)] = &[
        ("we need this asap", Some(Urgency::Asap)),
        ("honestly we needed it yesterday", Some(Urgency::Asap)),
        ("ideally this week", Some(Urgency::ThisWeek)),
        ("in the next couple of weeks", Some(Urgency::ThisMonth)),
        ("probably next quarter", Some(Urgency::NextQuarter)),
        ("sometime next year", Some(Urgency::Later)),
        ("we're just exploring", Some(Urgency::JustExploring)),
        ("no rush at all", Some(Urgency::JustExploring)),
        ("it's not urgent", Some(Urgency::JustExploring)),
        // Traps: "day" inside "Monday", "week" inside "weekend".
        ("I called on Monday", None),
        ("we'll look at it over the weekend", None),
    ];
    for (text, expected) in cases {
        assert_eq!(extract(text).signals.urgency, *expected, "{text:?}");
    }
}

#[test]
fn industry_is_named_by_whole_words() {
    let cases: &[(&str, Option<Industry>)] = &[
        ("we're a law firm", Some(Industry::Legal)),
        ("mid-size legal practice", Some(Industry::Legal)),
        ("we run three clinics", Some(Industry::Healthcare)),
        ("fintech, payments mostly", Some(Industry::Finance)),
        (
            "we do accounting for small businesses",
            Some(Industry::Finance),
        ),
        ("commercial real estate", Some(Industry::RealEstate)),
        ("freight and logistics", Some(Industry::Logistics)),
        ("a university admissions office", Some(Industry::Education)),
        ("we're a wholesale distributor", Some(Industry::Retail)),
        ("we're in HR tech", Some(Industry::Staffing)),
        // Traps: "hr" in "three", "ai" in "said", "law" in "by law", "bank" in "bankrupt".
        ("there are three of us", None),
        ("he said it was fine", None),
        ("we keep records as required by law", None),
        ("the old vendor went bankrupt", None),
    ];
    for (text, expected) in cases {
        assert_eq!(extract(text).signals.industry, *expected, "{text:?}");
    }
}

#[test]
fn email_addresses_are_read_written_or_spoken() {
    let cases: &[(&str, Option<&str>)] = &[
        ("it's jane@acme.com", Some("jane@acme.com")),
        ("Jane@Acme.com.", Some("jane@acme.com")),
        ("jane at acme dot com", Some("jane@acme.com")),
        (
            "my email is jane dot doe at acme dot co dot uk",
            Some("jane.doe@acme.co.uk"),
        ),
        ("it's j o h n at startup dot io", Some("john@startup.io")),
        (
            "sam underscore lee at big-corp dot com thanks",
            Some("sam_lee@big-corp.com"),
        ),
        ("reach me at acme dot com", Some("me@acme.com")),
        // Not addresses:
        ("we're at the office today", None),
        ("look at it later", None),
        ("jane at acme", None),
        ("he said it was fine", None),
    ];
    for (text, expected) in cases {
        assert_eq!(
            extract(text).signals.email.as_deref(),
            *expected,
            "{text:?}"
        );
    }
}

#[test]
fn confirmations_read_yes_no_and_hedges() {
    let cases: &[(&str, Option<Confirmation>)] = &[
        ("yes", Some(Confirmation::Yes)),
        ("Yeah, that's right", Some(Confirmation::Yes)),
        ("sure", Some(Confirmation::Yes)),
        ("sounds good to me", Some(Confirmation::Yes)),
        ("no problem", Some(Confirmation::Yes)),
        ("Right.", Some(Confirmation::Yes)),
        ("nope", Some(Confirmation::No)),
        ("no, that's wrong", Some(Confirmation::No)),
        ("not really", Some(Confirmation::No)),
        ("no thanks", Some(Confirmation::No)),
        ("I'm not sure", None),
        ("hmm, let me think", None),
        ("right away please", None),
    ];
    for (text, expected) in cases {
        assert_eq!(extract(text).confirmation, *expected, "{text:?}");
    }
}

#[test]
fn slot_choices_are_positions_days_and_times() {
    let pick = |text: &str| extract_answering(text, Some(Question::SlotChoice)).slot_choice;
    assert_eq!(pick("the first one").and_then(|c| c.position), Some(0));
    assert_eq!(pick("the second").and_then(|c| c.position), Some(1));
    assert_eq!(
        pick("option three please").and_then(|c| c.position),
        Some(2)
    );
    assert!(pick("the last one").is_some_and(|c| c.from_end));
    let tuesday = pick("Tuesday at 10 works").expect("a choice");
    assert_eq!(tuesday.weekday, Some(Weekday::Tuesday));
    assert_eq!(tuesday.time.map(|t| (t.hour, t.minute)), Some((10, 0)));
    let afternoon = pick("how about 2:30 pm")
        .and_then(|c| c.time)
        .expect("a time");
    assert_eq!(
        (afternoon.hour, afternoon.minute, afternoon.pm),
        (2, 30, Some(true))
    );
    let spoken = pick("Thursday at ten thirty")
        .and_then(|c| c.time)
        .expect("a time");
    assert_eq!((spoken.hour, spoken.minute), (10, 30));
    assert_eq!(pick("hmm, none of those"), None);
    // Slot words only count when a slot is being chosen.
    assert_eq!(extract("the first one").slot_choice, None);
}
