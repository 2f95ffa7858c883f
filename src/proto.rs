//! The generated gRPC types of `proto/cardlookup/v1/card_lookup.proto`.
//!
//! Requests that carry card numbers have a hand-written `Debug` that prints the number masked,
//! so that logging a request can never leak it.

#![allow(clippy::pedantic, unreachable_pub, missing_docs)]

pub mod cardlookup {
    pub mod admin {
        pub mod v1 {
            tonic::include_proto!("cardlookup.admin.v1");
        }
    }

    pub mod v1 {
        tonic::include_proto!("cardlookup.v1");
        // Serialize and Deserialize in the proto3 JSON mapping (pbjson-build).
        include!(concat!(env!("OUT_DIR"), "/cardlookup.v1.serde.rs"));

        use std::fmt;

        /// Prints a request's `number` as its digit count only.
        fn redacted(number: &str) -> String {
            let digits = number.bytes().filter(u8::is_ascii_digit).count();
            format!("<redacted: {digits} digits>")
        }

        impl fmt::Debug for ValidateRequest {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("ValidateRequest")
                    .field("number", &redacted(&self.number))
                    .finish()
            }
        }

        impl fmt::Debug for LookupBinRequest {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("LookupBinRequest")
                    .field("number", &redacted(&self.number))
                    .finish()
            }
        }

        impl fmt::Debug for InspectItem {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("InspectItem")
                    .field("id", &self.id)
                    .field("number", &redacted(&self.number))
                    .finish()
            }
        }

        impl fmt::Debug for MaskCardRequest {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("MaskCardRequest")
                    .field("number", &redacted(&self.number))
                    .field("style", &self.style)
                    .field("mask_character", &self.mask_character)
                    .field("keep_grouping", &self.keep_grouping)
                    .finish()
            }
        }
    }
}

/// The encoded descriptors of `cardlookup.v1`, for server reflection on the service's port.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/card_lookup_descriptor.bin"));

/// The encoded descriptors of `cardlookup.admin.v1`, for reflection on the admin port.
pub const ADMIN_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/admin_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::cardlookup::v1::*;

    #[test]
    fn request_debug_never_prints_the_number() {
        let validate = format!(
            "{:?}",
            ValidateRequest {
                number: "4111 1111 1111 1111".into()
            }
        );
        let lookup = format!(
            "{:?}",
            LookupBinRequest {
                number: "4111111111111111".into()
            }
        );
        let mask = format!(
            "{:?}",
            MaskCardRequest {
                number: "4111111111111111".into(),
                ..Default::default()
            }
        );
        for text in [validate, lookup, mask] {
            assert!(!text.contains("1111"), "{text}");
            assert!(text.contains("16 digits"), "{text}");
        }
    }
}
