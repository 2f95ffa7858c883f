//! Which route a request is for. The `/v1/...` routes are the `google.api.http` annotations of
//! `proto/cardlookup/v1/card_lookup.proto`; `GET /{bin}` is binlist.net's lookup;
//! `GET /openapi.json` is the description of the `/v1` routes.

use tonic::codegen::http::Method as HttpMethod;

use crate::telemetry::Method;

/// A request's route, found before admission (which counts the call under its method) and
/// kept in the request's extensions for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /{bin}`: binlist's lookup, the path's segment as sent.
    Binlist(String),
    /// `POST /v1/cards:validate`.
    Validate,
    /// `GET /v1/bins/{number}`, the path's segment as sent.
    LookupBinPath(String),
    /// `POST /v1/bins:lookup`: LookupBin with the number in the body.
    LookupBinBody,
    /// `POST /v1/cards:mask`.
    MaskCard,
    /// `GET /openapi.json`.
    OpenApi,
    /// A known path with another HTTP method; the one it takes.
    MethodNotAllowed(&'static str),
    NotFound,
}

impl Route {
    pub(super) fn of(method: &HttpMethod, path: &str) -> Self {
        let post = |route| {
            if method == HttpMethod::POST {
                route
            } else {
                Self::MethodNotAllowed("POST")
            }
        };
        let get = |route| {
            if method == HttpMethod::GET {
                route
            } else {
                Self::MethodNotAllowed("GET")
            }
        };
        match path {
            "/v1/cards:validate" => post(Self::Validate),
            "/v1/cards:mask" => post(Self::MaskCard),
            "/v1/bins:lookup" => post(Self::LookupBinBody),
            super::openapi::PATH => get(Self::OpenApi),
            _ => {
                if let Some(number) = path.strip_prefix("/v1/bins/").and_then(segment) {
                    get(Self::LookupBinPath(number.to_owned()))
                } else if let Some(bin) = path.strip_prefix('/').and_then(segment)
                    && bin != "v1"
                {
                    get(Self::Binlist(bin.to_owned()))
                } else {
                    Self::NotFound
                }
            }
        }
    }

    /// The RPC the route calls, under which admission counts it.
    pub(super) fn method(&self) -> Option<Method> {
        match self {
            Self::Binlist(_) | Self::LookupBinPath(_) | Self::LookupBinBody => {
                Some(Method::LookupBin)
            }
            Self::Validate => Some(Method::Validate),
            Self::MaskCard => Some(Method::MaskCard),
            Self::OpenApi | Self::MethodNotAllowed(_) | Self::NotFound => None,
        }
    }
}

/// One non-empty path segment.
fn segment(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.contains('/')).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_annotations_and_binlist() {
        let get = HttpMethod::GET;
        let post = HttpMethod::POST;
        assert_eq!(
            Route::of(&get, "/45717360"),
            Route::Binlist("45717360".into())
        );
        assert_eq!(
            Route::of(&get, "/v1/bins/411111"),
            Route::LookupBinPath("411111".into())
        );
        assert_eq!(Route::of(&post, "/v1/cards:validate"), Route::Validate);
        assert_eq!(Route::of(&post, "/v1/cards:mask"), Route::MaskCard);
        assert_eq!(Route::of(&post, "/v1/bins:lookup"), Route::LookupBinBody);
        assert_eq!(Route::of(&get, "/openapi.json"), Route::OpenApi);
        assert_eq!(
            Route::of(&post, "/openapi.json"),
            Route::MethodNotAllowed("GET")
        );
        assert_eq!(
            Route::of(&get, "/v1/cards:validate"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(
            Route::of(&post, "/45717360"),
            Route::MethodNotAllowed("GET")
        );
        for path in ["/", "/v1", "/v1/bins/", "/v1/bins/4111/x", "/a/b"] {
            assert_eq!(Route::of(&get, path), Route::NotFound, "{path}");
        }
    }
}
