//! Derivation path parsing.

use cairn_wallet::keys::{
    account_path, ChildNumber, DerivationPath, PathError, CAIRN_ACCOUNT_PATH_PREFIX, HARDENED_BIT,
};

fn parse(s: &str) -> Result<DerivationPath, PathError> {
    s.parse()
}

#[test]
fn valid_paths_parse() {
    let path = parse("m/44'/7370'/0'/0/5").unwrap();
    let raw: Vec<u32> = path.iter().map(|c| c.index()).collect();
    assert_eq!(
        raw,
        [44 | HARDENED_BIT, 7370 | HARDENED_BIT, HARDENED_BIT, 0, 5]
    );
    assert_eq!(path.to_string(), "m/44'/7370'/0'/0/5");
    assert_eq!(path, account_path(5));

    // h and H are accepted for hardened and print as '.
    assert_eq!(parse("m/44h/7370H/0h/0/5").unwrap(), path);
    assert_eq!(parse("m").unwrap(), DerivationPath::master());
    assert!(parse("m").unwrap().is_empty());
    assert_eq!(
        parse("m/0").unwrap().as_slice(),
        [ChildNumber::normal(0).unwrap()]
    );
    assert_eq!(
        parse("m/2147483647'/2147483647").unwrap().as_slice(),
        [
            ChildNumber::hardened(2147483647).unwrap(),
            ChildNumber::normal(2147483647).unwrap()
        ]
    );
    assert_eq!(
        parse(CAIRN_ACCOUNT_PATH_PREFIX)
            .unwrap()
            .child(ChildNumber::normal(9).unwrap()),
        account_path(9)
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "m",
        "m/0'",
        "m/0/2147483647'/1/2147483646'/2",
        "m/44'/7370'/0'/0/0",
    ] {
        assert_eq!(parse(s).unwrap().to_string(), s);
    }
}

#[test]
fn invalid_paths_are_errors() {
    use PathError::*;
    let cases: &[(&str, PathError)] = &[
        ("", Empty),
        ("44'/0'", MissingMaster("44'".into())),
        ("M/0", MissingMaster("M".into())),
        ("/0", MissingMaster("".into())),
        (" m/0", MissingMaster(" m".into())),
        ("m/", EmptyComponent { position: 1 }),
        ("m//0", EmptyComponent { position: 1 }),
        ("m/0/", EmptyComponent { position: 2 }),
        (
            "m/x",
            InvalidComponent {
                position: 1,
                component: "x".into(),
            },
        ),
        (
            "m/0/-1",
            InvalidComponent {
                position: 2,
                component: "-1".into(),
            },
        ),
        (
            "m/+1",
            InvalidComponent {
                position: 1,
                component: "+1".into(),
            },
        ),
        (
            "m/1 ",
            InvalidComponent {
                position: 1,
                component: "1 ".into(),
            },
        ),
        (
            "m/ 1",
            InvalidComponent {
                position: 1,
                component: " 1".into(),
            },
        ),
        (
            "m/44''",
            InvalidComponent {
                position: 1,
                component: "44''".into(),
            },
        ),
        (
            "m/44'h",
            InvalidComponent {
                position: 1,
                component: "44'h".into(),
            },
        ),
        (
            "m/'",
            InvalidComponent {
                position: 1,
                component: "'".into(),
            },
        ),
        (
            "m/h",
            InvalidComponent {
                position: 1,
                component: "h".into(),
            },
        ),
        (
            "m/44p",
            InvalidComponent {
                position: 1,
                component: "44p".into(),
            },
        ),
        (
            "m/0x10",
            InvalidComponent {
                position: 1,
                component: "0x10".into(),
            },
        ),
        (
            "m/01",
            InvalidComponent {
                position: 1,
                component: "01".into(),
            },
        ),
        (
            "m/1.5",
            InvalidComponent {
                position: 1,
                component: "1.5".into(),
            },
        ),
        (
            "m/٣",
            InvalidComponent {
                position: 1,
                component: "٣".into(),
            },
        ),
        (
            "m/44'/0'\n",
            InvalidComponent {
                position: 2,
                component: "0'\n".into(),
            },
        ),
        (
            "m/2147483648",
            IndexOutOfRange {
                position: 1,
                component: "2147483648".into(),
            },
        ),
        (
            "m/2147483648'",
            IndexOutOfRange {
                position: 1,
                component: "2147483648'".into(),
            },
        ),
        (
            "m/0/4294967296",
            IndexOutOfRange {
                position: 2,
                component: "4294967296".into(),
            },
        ),
        (
            "m/99999999999999999999h",
            IndexOutOfRange {
                position: 1,
                component: "99999999999999999999h".into(),
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input).as_ref(), Err(expected), "{input:?}");
        // Every error has a message.
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn child_number_parsing() {
    assert_eq!(
        "0".parse::<ChildNumber>().unwrap(),
        ChildNumber::normal(0).unwrap()
    );
    assert_eq!(
        "44'".parse::<ChildNumber>().unwrap(),
        ChildNumber::hardened(44).unwrap()
    );
    assert!("".parse::<ChildNumber>().is_err());
    assert!("m".parse::<ChildNumber>().is_err());
    assert!("2147483648".parse::<ChildNumber>().is_err());
}
