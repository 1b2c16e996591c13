//! The official BIP340 test vectors, through the wallet's own signing and verification
//! (`cairn_wallet::signing`, which `send` uses).
//!
//! `data/bip340_vectors.csv` is `bip-0340/test-vectors.csv` of the bitcoin/bips repository,
//! unchanged: rows 0-3 and 15-18 have a secret key (signing must give exactly the listed
//! signature, for messages of 32 bytes and of 0, 1, 17 and 100 bytes), every row is a
//! verification case (including invalid keys and signatures, which must fail).

use cairn_wallet::signing::{sign_message, verify_message};
use secp256k1::{Keypair, SecretKey};

struct Row {
    index: u32,
    secret_key: Option<[u8; 32]>,
    public_key: [u8; 32],
    aux_rand: Option<[u8; 32]>,
    message: Vec<u8>,
    signature: [u8; 64],
    valid: bool,
    comment: String,
}

fn array<const N: usize>(hex_text: &str) -> [u8; N] {
    let bytes = hex::decode(hex_text).unwrap_or_else(|e| panic!("{hex_text}: {e}"));
    bytes
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("{} bytes, expected {N}", b.len()))
}

fn rows() -> Vec<Row> {
    let text = include_str!("data/bip340_vectors.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "index,secret key,public key,aux_rand,message,signature,verification result,comment"
    );
    let rows: Vec<Row> = lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.splitn(8, ',').collect();
            assert_eq!(f.len(), 8, "{line}");
            Row {
                index: f[0].parse().unwrap(),
                secret_key: (!f[1].is_empty()).then(|| array(f[1])),
                public_key: array(f[2]),
                aux_rand: (!f[3].is_empty()).then(|| array(f[3])),
                message: hex::decode(f[4]).unwrap(),
                signature: array(f[5]),
                valid: match f[6] {
                    "TRUE" => true,
                    "FALSE" => false,
                    other => panic!("verification result {other:?}"),
                },
                comment: f[7].to_string(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 19, "the vector file has rows 0 to 18");
    rows
}

#[test]
fn signing_rows_give_exactly_the_listed_signature() {
    let mut signed = 0;
    for row in rows() {
        let Some(secret) = row.secret_key else {
            continue;
        };
        let keypair = Keypair::from_secret_key(&SecretKey::from_secret_bytes(secret).unwrap());
        assert_eq!(
            keypair.x_only_public_key().0.to_byte_array(),
            row.public_key,
            "row {}: public key",
            row.index
        );
        let aux = row.aux_rand.expect("signing rows have aux_rand");
        let signature = sign_message(&keypair, &row.message, &aux);
        assert_eq!(
            hex::encode_upper(signature),
            hex::encode_upper(row.signature),
            "row {}: signature {}",
            row.index,
            row.comment
        );
        signed += 1;
    }
    assert_eq!(signed, 8, "rows 0-3 and 15-18 sign");
}

#[test]
fn every_row_verifies_as_listed() {
    let rows = rows();
    assert_eq!(rows.iter().filter(|r| !r.valid).count(), 10);
    for row in &rows {
        assert_eq!(
            verify_message(&row.public_key, &row.message, &row.signature),
            row.valid,
            "row {}: {}",
            row.index,
            row.comment
        );
    }
}

#[test]
fn valid_signatures_fail_once_changed() {
    for row in rows().into_iter().filter(|r| r.valid) {
        for byte in [0, 31, 32, 63] {
            let mut signature = row.signature;
            signature[byte] ^= 0x01;
            assert!(
                !verify_message(&row.public_key, &row.message, &signature),
                "row {} with byte {byte} flipped",
                row.index
            );
        }
        let mut message = row.message.clone();
        message.push(0);
        assert!(
            !verify_message(&row.public_key, &message, &row.signature),
            "row {} with a longer message",
            row.index
        );
    }
}
