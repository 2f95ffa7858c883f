//! The streaming benchmark: how many cards a second one Inspect stream checks end to end
//! (validation, BIN lookup and masking of each), against a running server.
//!
//! Run: `cargo run --release -- --max-concurrent-requests 4096 &` then
//! `cargo run --release --example inspect_load -- [URL] [CARDS] [--shared-bins]
//! [--distinct-bins]` (defaults `http://127.0.0.1:50051` and 2,000,000). Batches of 1,000
//! cards are sent ahead of the answers (16 batches in flight), as a batch job would stream a
//! file.

use std::time::Instant;

use card_lookup::card::luhn;
use card_lookup::proto::cardlookup::v1 as pb;
use clap::Parser;
use pb::card_lookup_service_client::CardLookupServiceClient;
use tokio_stream::wrappers::ReceiverStream;

/// The allocator the service uses (src/main.rs), so both ends are measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1000;
const IN_FLIGHT: usize = 16;

/// Published test numbers and a few invalid ones, as a settlement file has them.
const NUMBERS: [&str; 8] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
    "6228480000000000000",
    "4111111111111112",
    "411111",
];

/// Cards a second on one Inspect stream.
#[derive(Parser)]
struct Args {
    /// The server.
    #[arg(default_value = "http://127.0.0.1:50051")]
    url: String,
    /// How many cards to send (in batches of 1,000).
    #[arg(default_value_t = 2_000_000)]
    cards: usize,
    /// Ask for each distinct BIN answer once a response (BIN_ANSWER_LAYOUT_SHARED).
    #[arg(long)]
    shared_bins: bool,
    /// Make every card of a batch a different BIN (1,000 six-digit prefixes from 400000 up,
    /// Luhn-valid), the worst case for shared BIN answers, instead of the 8 numbers repeated.
    #[arg(long)]
    distinct_bins: bool,
}

/// A valid 16-digit number with the BIN `prefix`.
fn card_of_bin(prefix: usize) -> String {
    let body = format!("{prefix:06}123456789");
    let payload: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", luhn::check_digit(&payload))
}

// One stream is one task's work: a single-threaded runtime avoids handing each answer between
// threads (with the multi-threaded runtime one stream was some 20% slower on 2 cores, where the
// server needs the other core).
#[tokio::main(flavor = "current_thread")]
#[allow(clippy::cast_precision_loss)] // a rate for people to read
async fn main() {
    let Args {
        url,
        cards,
        shared_bins,
        distinct_bins,
    } = Args::parse();
    let batches = cards.div_ceil(BATCH);

    let mut client = CardLookupServiceClient::connect(url)
        .await
        .expect("the server accepts connections")
        .max_decoding_message_size(64 * 1024 * 1024);
    let (sender, requests) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let batch = pb::InspectRequest {
        items: (0..BATCH)
            .map(|i| pb::InspectItem {
                id: i.to_string(),
                number: if distinct_bins {
                    card_of_bin(400_000 + i * 199)
                } else {
                    NUMBERS[i % NUMBERS.len()].to_owned()
                },
            })
            .collect(),
        mask_style: pb::MaskStyle::LastFour.into(),
        bin_answers: if shared_bins {
            pb::BinAnswerLayout::Shared
        } else {
            pb::BinAnswerLayout::PerResult
        }
        .into(),
    };
    let started = Instant::now();
    tokio::spawn(async move {
        for _ in 0..batches {
            if sender.send(batch.clone()).await.is_err() {
                break;
            }
        }
    });
    let mut answers = client
        .inspect(ReceiverStream::new(requests))
        .await
        .expect("Inspect starts")
        .into_inner();
    let (mut answered, mut found, mut bin_answers) = (0usize, 0usize, 0usize);
    while let Some(answer) = answers.message().await.expect("the stream does not fail") {
        answered += answer.results.len();
        for result in &answer.results {
            let bin = result
                .bin
                .as_deref()
                .or_else(|| answer.bins.get(result.bin_index? as usize));
            found += usize::from(bin.is_some_and(|bin| bin.found));
        }
        bin_answers +=
            answer.bins.len() + answer.results.iter().filter(|r| r.bin.is_some()).count();
    }
    let elapsed = started.elapsed();
    assert_eq!(answered, batches * BATCH, "every card answered");
    println!(
        "inspect: {answered} cards in {:.2} s: {:.0} cards/s on one stream \
         ({:.0}% found in the BIN data; {:.0} BIN answers sent a batch)",
        elapsed.as_secs_f64(),
        answered as f64 / elapsed.as_secs_f64(),
        100.0 * found as f64 / answered as f64,
        bin_answers as f64 / batches as f64,
    );
}
