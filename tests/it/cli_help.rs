//! Help text for every command and flag of the command-line client.

use std::process::Command;

use card_lookup::cli::Cli;
use clap::{CommandFactory, Parser};

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

const CARD_COMMANDS: [&str; 3] = ["validate", "lookup", "mask"];

#[test]
fn every_card_command_and_flag_has_help_text() {
    let cli = Cli::command();
    for name in CARD_COMMANDS {
        let command = cli
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("no `{name}` command"));
        assert!(command.get_about().is_some(), "`{name}` has no help");
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" {
                continue;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                help.len() > 15,
                "`{name}`: the argument `{id}` has no help text"
            );
        }
    }
}

#[test]
fn help_names_the_commands_their_flags_and_exit_codes() {
    let top = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(top.status.success());
    let top = String::from_utf8(top.stdout).unwrap();
    for name in CARD_COMMANDS {
        assert!(top.contains(&format!("  {name} ")), "{name} in\n{top}");
    }

    let expected: [(&str, &[&str]); 3] = [
        (
            "validate",
            &[
                "--file <FILE>",
                "--unmasked",
                "--no-progress",
                "--json",
                "--server <URL>",
                "--ca-cert <PEM>",
                "--cert <PEM>",
                "--key <PEM>",
                "--tls-server-name <NAME>",
                "--timeout <DURATION>",
                "--bin-data <FILE>",
                "--bin-data-format <FORMAT>",
                "--no-default-data",
                "Exit status: 0 valid, 1 invalid",
            ],
        ),
        (
            "lookup",
            &[
                "<BIN>...",
                "--json",
                "--server <URL>",
                "Exit status: 0 found",
            ],
        ),
        (
            "mask",
            &[
                "--style <STYLE>",
                "last-four",
                "bin-and-last-four",
                "--mask-char <C>",
                "--grouping",
                "--json",
                "--server <URL>",
            ],
        ),
    ];
    for (name, flags) in expected {
        let output = Command::new(BINARY)
            .args([name, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{name} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        for flag in flags {
            assert!(help.contains(flag), "`{name} --help` lacks {flag}:\n{help}");
        }
    }
}

#[test]
fn serving_is_still_the_default() {
    // The server's flags still parse at the top level and under `serve`.
    let cli = Cli::try_parse_from(["card-lookup", "--listen", "127.0.0.1:0"]).unwrap();
    assert!(cli.command.is_none());
    let serve = Cli::try_parse_from(["card-lookup", "serve", "--listen", "127.0.0.1:0"]).unwrap();
    assert!(matches!(
        serve.command,
        Some(card_lookup::cli::Command::Serve(_))
    ));
}
