//! Card networks and what each issues: number lengths, whether Luhn applies, digit grouping.

use std::fmt;

use super::check_digit::CheckDigit;

/// A card network (scheme). The order is the order of the proto enum and of tie-breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CardNetwork {
    Visa,
    Mastercard,
    AmericanExpress,
    Discover,
    DinersClub,
    Jcb,
    UnionPay,
    Maestro,
    Mir,
    Elo,
    Hipercard,
    Hiper,
    Troy,
    Verve,
    RuPay,
    Naranja,
    Uatp,
    DinaCard,
    // The domestic schemes, known from BIN data and their published ranges
    // (`card::domestic`), not from the IIN rules: after the others, so that the IIN rules'
    // tables index by network below [`CardNetwork::ALL`]'s length.
    Dankort,
    CartesBancaires,
    EftposAustralia,
    Mada,
    Bancontact,
    Girocard,
    Interac,
    Star,
    Nyce,
    Pulse,
    Accel,
}

/// What a network issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The network's name as people write it.
    pub name: &'static str,
    /// The lengths of the numbers it issues, ascending.
    pub lengths: &'static [u8],
    /// The rule its numbers' last digit follows.
    pub check_digit: CheckDigit,
    /// Where a printed number has a space: after this many digits.
    pub gaps: &'static [u8],
}

const GAPS_4_4_4_4: &[u8] = &[4, 8, 12, 16];
const GAPS_4_6_5: &[u8] = &[4, 10];
const GAPS_4_5_6: &[u8] = &[4, 9];

impl CardNetwork {
    /// The networks the IIN rules detect (`card::iin`), in declaration order.
    pub const ALL: [Self; 18] = [
        Self::Visa,
        Self::Mastercard,
        Self::AmericanExpress,
        Self::Discover,
        Self::DinersClub,
        Self::Jcb,
        Self::UnionPay,
        Self::Maestro,
        Self::Mir,
        Self::Elo,
        Self::Hipercard,
        Self::Hiper,
        Self::Troy,
        Self::Verve,
        Self::RuPay,
        Self::Naranja,
        Self::Uatp,
        Self::DinaCard,
    ];

    /// The domestic schemes that co-badge with the networks above, in declaration order.
    pub const DOMESTIC: [Self; 11] = [
        Self::Dankort,
        Self::CartesBancaires,
        Self::EftposAustralia,
        Self::Mada,
        Self::Bancontact,
        Self::Girocard,
        Self::Interac,
        Self::Star,
        Self::Nyce,
        Self::Pulse,
        Self::Accel,
    ];

    /// Every network: [`ALL`](Self::ALL), then [`DOMESTIC`](Self::DOMESTIC).
    pub fn every() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().chain(Self::DOMESTIC)
    }

    /// Whether a card of this scheme carries an international network's number too (a
    /// girocard is a Maestro or V PAY card, an eftpos card a Visa or Mastercard): a brand naming
    /// the scheme alone then leaves the network to the IIN rules, and the scheme is co-badged.
    /// Dankort is the exception: it has its own IIN range (5019) and issues cards alone.
    #[must_use]
    pub const fn rides_on_international(self) -> bool {
        matches!(
            self,
            Self::CartesBancaires
                | Self::EftposAustralia
                | Self::Mada
                | Self::Bancontact
                | Self::Girocard
                | Self::Interac
                | Self::Star
                | Self::Nyce
                | Self::Pulse
                | Self::Accel
        )
    }

    /// The network's lengths, check-digit rule and grouping.
    ///
    /// Lengths follow the networks' published rules: Discover Global Network's for Discover,
    /// Diners Club and JCB (16 to 19 digits; Diners Club from 14), the braintree validators for
    /// the rest, and Visa also accepts 13 digits, the length of its legacy numbers that payment
    /// providers still publish as test cards (docs/card-networks.md).
    #[must_use]
    pub const fn spec(self) -> NetworkSpec {
        const fn spec(
            name: &'static str,
            lengths: &'static [u8],
            check_digit: CheckDigit,
            gaps: &'static [u8],
        ) -> NetworkSpec {
            NetworkSpec {
                name,
                lengths,
                check_digit,
                gaps,
            }
        }
        const LUHN: CheckDigit = CheckDigit::Luhn;
        const NO_CHECK: CheckDigit = CheckDigit::None;
        // The domestic schemes other than Dankort publish no lengths of their own: their cards
        // are the international network's numbers, and these are the lengths ISO/IEC 7812
        // allows debit numbers from 16 digits on (they apply only where an operator's data names
        // such a scheme as the network).
        const DEBIT: &[u8] = &[16, 17, 18, 19];
        match self {
            Self::Visa => spec("Visa", &[13, 16, 18, 19], LUHN, GAPS_4_4_4_4),
            Self::Mastercard => spec("Mastercard", &[16], LUHN, GAPS_4_4_4_4),
            Self::AmericanExpress => spec("American Express", &[15], LUHN, GAPS_4_6_5),
            Self::Discover => spec("Discover", &[16, 17, 18, 19], LUHN, GAPS_4_4_4_4),
            Self::DinersClub => spec("Diners Club", &[14, 15, 16, 17, 18, 19], LUHN, GAPS_4_6_5),
            Self::Jcb => spec("JCB", &[16, 17, 18, 19], LUHN, GAPS_4_4_4_4),
            Self::UnionPay => spec(
                "UnionPay",
                &[14, 15, 16, 17, 18, 19],
                NO_CHECK,
                GAPS_4_4_4_4,
            ),
            Self::Maestro => spec(
                "Maestro",
                &[12, 13, 14, 15, 16, 17, 18, 19],
                LUHN,
                GAPS_4_4_4_4,
            ),
            Self::Mir => spec("Mir", &[16, 17, 18, 19], LUHN, GAPS_4_4_4_4),
            Self::Elo => spec("Elo", &[16], LUHN, GAPS_4_4_4_4),
            Self::Hipercard => spec("Hipercard", &[16], LUHN, GAPS_4_4_4_4),
            Self::Hiper => spec("Hiper", &[16], LUHN, GAPS_4_4_4_4),
            Self::Troy => spec("Troy", &[16], LUHN, GAPS_4_4_4_4),
            Self::Verve => spec("Verve", &[16, 18, 19], LUHN, GAPS_4_4_4_4),
            Self::RuPay => spec("RuPay", &[16], LUHN, GAPS_4_4_4_4),
            Self::Naranja => spec("Naranja", &[16], CheckDigit::LuhnOrNaranja, GAPS_4_4_4_4),
            Self::Uatp => spec("UATP", &[15], LUHN, GAPS_4_5_6),
            Self::DinaCard => spec("DinaCard", &[16], LUHN, GAPS_4_4_4_4),
            Self::Dankort => spec("Dankort", &[16], LUHN, GAPS_4_4_4_4),
            Self::CartesBancaires => spec("Cartes Bancaires", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::EftposAustralia => spec("eftpos", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Mada => spec("mada", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Bancontact => spec("Bancontact", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Girocard => spec("girocard", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Interac => spec("Interac", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Star => spec("STAR", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Nyce => spec("NYCE", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Pulse => spec("PULSE", DEBIT, LUHN, GAPS_4_4_4_4),
            Self::Accel => spec("Accel", DEBIT, LUHN, GAPS_4_4_4_4),
        }
    }

    /// The lengths the network issues.
    #[must_use]
    pub fn lengths(self) -> LengthSet {
        LengthSet::from_lengths(self.spec().lengths)
    }

    /// The name used in data files and on the command line: `visa`, `american-express`, ...
    #[must_use]
    pub const fn slug(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::AmericanExpress => "american-express",
            Self::Discover => "discover",
            Self::DinersClub => "diners-club",
            Self::Jcb => "jcb",
            Self::UnionPay => "unionpay",
            Self::Maestro => "maestro",
            Self::Mir => "mir",
            Self::Elo => "elo",
            Self::Hipercard => "hipercard",
            Self::Hiper => "hiper",
            Self::Troy => "troy",
            Self::Verve => "verve",
            Self::RuPay => "rupay",
            Self::Naranja => "naranja",
            Self::Uatp => "uatp",
            Self::DinaCard => "dinacard",
            Self::Dankort => "dankort",
            Self::CartesBancaires => "cartes-bancaires",
            Self::EftposAustralia => "eftpos-australia",
            Self::Mada => "mada",
            Self::Bancontact => "bancontact",
            Self::Girocard => "girocard",
            Self::Interac => "interac",
            Self::Star => "star",
            Self::Nyce => "nyce",
            Self::Pulse => "pulse",
            Self::Accel => "accel",
        }
    }

    /// The network named by its [`slug`](Self::slug), in any case.
    #[must_use]
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::every().find(|network| network.slug().eq_ignore_ascii_case(slug.trim()))
    }

    /// The network a BIN table's brand or scheme names, if it names one ([`brand_networks`]'s
    /// network).
    ///
    /// [`brand_networks`]: Self::brand_networks
    #[must_use]
    pub fn from_brand(brand: &str) -> Option<Self> {
        Self::brand_networks(brand).0
    }

    /// The network a BIN table's brand names, and the other networks it names (co-badged).
    ///
    /// BIN tables spell networks many ways ("CHINA UNION PAY", "NSPK MIR", "AMEX") and name
    /// co-badged cards with a `/` ("VISA/DANKORT", "MAESTRO/BANCONTACT", "JCB/RUPAY"). The
    /// network is the first part that names one, unless it is a scheme whose cards ride on an
    /// international network's number ([`rides_on_international`]): "GIROCARD" alone gives no
    /// network (the IIN rules give Maestro or Visa) and girocard co-badged. Brands and parts
    /// that are not networks ("PRIVATE LABEL", "EBT", "UZCARD") name none.
    ///
    /// [`rides_on_international`]: Self::rides_on_international
    #[must_use]
    pub fn brand_networks(brand: &str) -> (Option<Self>, NetworkSet) {
        let mut network = None;
        let mut co_badged = NetworkSet::empty();
        for part in brand.split('/').filter_map(Self::from_brand_part) {
            if network.is_none() && !part.rides_on_international() {
                network = Some(part);
            } else {
                co_badged.insert(part);
            }
        }
        if let Some(network) = network {
            co_badged.remove(network);
        }
        (network, co_badged)
    }

    /// The network one part of a brand names ("VISA", "DANKORT").
    fn from_brand_part(part: &str) -> Option<Self> {
        let part = part.trim().to_ascii_uppercase();
        Some(match part.as_str() {
            "VISA" | "VISA ELECTRON" | "ELECTRON" | "VPAY" | "V PAY" => Self::Visa,
            "MASTERCARD" | "MASTER CARD" | "MC" => Self::Mastercard,
            "AMERICAN EXPRESS" | "AMEX" | "AMERICAN-EXPRESS" => Self::AmericanExpress,
            "DISCOVER" => Self::Discover,
            "DINERS CLUB INTERNATIONAL" | "DINERS CLUB" | "DINERS" | "DINERS-CLUB" => {
                Self::DinersClub
            }
            "JCB" => Self::Jcb,
            "CHINA UNION PAY" | "UNIONPAY" | "UNION PAY" | "CUP" | "CHINAUNIONPAY" => {
                Self::UnionPay
            }
            "MAESTRO" => Self::Maestro,
            "NSPK MIR" | "MIR" => Self::Mir,
            "ELO" => Self::Elo,
            "HIPERCARD" => Self::Hipercard,
            "HIPER" => Self::Hiper,
            "TROY" => Self::Troy,
            "VERVE" => Self::Verve,
            "RUPAY" => Self::RuPay,
            "TARJETA NARANJA" | "NARANJA" => Self::Naranja,
            "UATP" => Self::Uatp,
            "DINACARD" | "DINA CARD" => Self::DinaCard,
            "DANKORT" => Self::Dankort,
            "CARTES BANCAIRES" | "CARTE BANCAIRE" | "CB" => Self::CartesBancaires,
            "EFTPOS" | "EFTPOS AUSTRALIA" => Self::EftposAustralia,
            "MADA" => Self::Mada,
            "BANCONTACT" | "BCMC" => Self::Bancontact,
            "GIROCARD" => Self::Girocard,
            "INTERAC" => Self::Interac,
            "STAR" => Self::Star,
            "NYCE" => Self::Nyce,
            "PULSE" => Self::Pulse,
            "ACCEL" => Self::Accel,
            _ => return None,
        })
    }
}

impl fmt::Display for CardNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().name)
    }
}

/// A set of card number lengths (1 to 19 digits), without allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LengthSet(u32);

/// A length outside 12 to 19 digits, or text that is not a list of lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("lengths must be numbers from 12 to 19, separated by `;` or given as a range like 12-19")]
pub struct LengthSetError;

impl LengthSet {
    /// The lengths a card number can have.
    pub const VALID: std::ops::RangeInclusive<usize> = 12..=19;

    #[must_use]
    pub fn from_lengths(lengths: &[u8]) -> Self {
        Self(lengths.iter().fold(0, |set, &l| set | (1 << l)))
    }

    /// Parses `16`, `16;19` or `12-19`.
    ///
    /// # Errors
    /// [`LengthSetError`] for anything else, or a length outside 12 to 19.
    pub fn parse(text: &str) -> Result<Self, LengthSetError> {
        let mut set = 0u32;
        for part in text.split(';').map(str::trim) {
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let low: usize = low.trim().parse().map_err(|_| LengthSetError)?;
            let high: usize = high.trim().parse().map_err(|_| LengthSetError)?;
            if !Self::VALID.contains(&low) || !Self::VALID.contains(&high) || low > high {
                return Err(LengthSetError);
            }
            for length in low..=high {
                set |= 1 << length;
            }
        }
        Ok(Self(set))
    }

    #[must_use]
    pub const fn contains(self, length: usize) -> bool {
        length < 32 && self.0 & (1 << length) != 0
    }

    /// The lengths, shortest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..32).filter(move |&l| self.contains(l))
    }

    /// The shortest and longest length; `None` for the empty set.
    #[must_use]
    pub fn bounds(self) -> Option<(usize, usize)> {
        Some((self.iter().next()?, self.iter().last()?))
    }
}

impl fmt::Display for LengthSet {
    /// `16;19`: the form [`LengthSet::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, length) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{length}")?;
        }
        Ok(())
    }
}

/// A set of networks, without allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NetworkSet(u32);

impl NetworkSet {
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn insert(&mut self, network: CardNetwork) {
        self.0 |= 1 << network as u32;
    }

    pub fn remove(&mut self, network: CardNetwork) {
        self.0 &= !(1 << network as u32);
    }

    /// The networks in either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn contains(self, network: CardNetwork) -> bool {
        self.0 & (1 << network as u32) != 0
    }

    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The networks in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = CardNetwork> {
        CardNetwork::every().filter(move |&network| self.contains(network))
    }
}

impl FromIterator<CardNetwork> for NetworkSet {
    fn from_iter<I: IntoIterator<Item = CardNetwork>>(iter: I) -> Self {
        let mut set = Self::empty();
        for network in iter {
            set.insert(network);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_ascending_and_within_iso_bounds() {
        for network in CardNetwork::every() {
            let lengths = network.spec().lengths;
            assert!(lengths.windows(2).all(|w| w[0] < w[1]), "{network}");
            assert!(lengths.iter().all(|&l| (12..=19).contains(&l)), "{network}");
        }
    }

    #[test]
    fn only_unionpay_needs_no_check_digit() {
        let without: Vec<_> = CardNetwork::ALL
            .into_iter()
            .filter(|n| !n.spec().check_digit.is_required())
            .collect();
        assert_eq!(without, [CardNetwork::UnionPay]);
    }

    #[test]
    fn maps_bin_table_brands() {
        assert_eq!(
            CardNetwork::from_brand("CHINA UNION PAY"),
            Some(CardNetwork::UnionPay)
        );
        assert_eq!(CardNetwork::from_brand("NSPK MIR"), Some(CardNetwork::Mir));
        assert_eq!(
            CardNetwork::from_brand("visa/dankort"),
            Some(CardNetwork::Visa)
        );
        assert_eq!(
            CardNetwork::from_brand("TARJETA NARANJA"),
            Some(CardNetwork::Naranja)
        );
        assert_eq!(CardNetwork::from_brand("PRIVATE LABEL"), None);
        assert_eq!(CardNetwork::from_brand(""), None);
    }

    #[test]
    fn co_badged_brands_name_the_international_network_and_the_others() {
        use CardNetwork::{Bancontact, Dankort, Girocard, Jcb, Maestro, RuPay, UnionPay, Visa};
        let networks = |brand: &str| {
            let (network, co_badged) = CardNetwork::brand_networks(brand);
            (network, co_badged.iter().collect::<Vec<_>>())
        };
        assert_eq!(networks("VISA/DANKORT"), (Some(Visa), vec![Dankort]));
        assert_eq!(
            networks("MAESTRO/BANCONTACT"),
            (Some(Maestro), vec![Bancontact])
        );
        assert_eq!(networks("JCB/RUPAY"), (Some(Jcb), vec![RuPay]));
        assert_eq!(networks("JCB/CHINA UNION PAY"), (Some(Jcb), vec![UnionPay]));
        // A part that names no network of ours is left out; the network is still named.
        assert_eq!(networks("CHINA UNION PAY/UZCARD"), (Some(UnionPay), vec![]));
        // girocard rides on a Maestro or V PAY number: the IIN rules name the network.
        assert_eq!(networks("GIROCARD"), (None, vec![Girocard]));
        // Dankort issues cards alone on its own range.
        assert_eq!(networks("DANKORT"), (Some(Dankort), vec![]));
        assert_eq!(networks("VISA"), (Some(Visa), vec![]));
        assert_eq!(networks("VISA/VISA"), (Some(Visa), vec![]));
        assert_eq!(networks("EBT"), (None, vec![]));
    }

    #[test]
    fn length_sets_parse_lists_and_ranges() {
        let set = LengthSet::parse("16;19").unwrap();
        assert!(set.contains(16) && set.contains(19) && !set.contains(17));
        assert_eq!(set.to_string(), "16;19");
        assert_eq!(LengthSet::parse("12-14").unwrap().to_string(), "12;13;14");
        assert_eq!(LengthSet::parse(" 16 ").unwrap().bounds(), Some((16, 16)));
        for bad in ["", "11", "20", "16;x", "19-12", "16,19"] {
            assert_eq!(LengthSet::parse(bad), Err(LengthSetError), "{bad:?}");
        }
    }

    #[test]
    fn slugs_round_trip() {
        for network in CardNetwork::every() {
            assert_eq!(CardNetwork::from_slug(network.slug()), Some(network));
        }
        assert_eq!(CardNetwork::from_slug("VISA"), Some(CardNetwork::Visa));
        assert_eq!(CardNetwork::from_slug("private label"), None);
    }

    #[test]
    fn network_set_keeps_declaration_order() {
        let set: NetworkSet = [CardNetwork::Elo, CardNetwork::Visa].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [CardNetwork::Visa, CardNetwork::Elo]
        );
    }
}
