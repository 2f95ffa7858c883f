//! The baseline of the load benchmark (`bench/load.sh`): a tonic server of the same proto that
//! does no work. Each of Validate, LookupBin and MaskCard decodes its request and answers a
//! canned response message: a copy of the service's own answer to the benchmark's request,
//! read at start-up, so both servers send messages of the same size (issue 4: "same message
//! sizes"). Any other method of the service is UNIMPLEMENTED.
//!
//! Everything around the handlers is as the service sets it in `src/server.rs` and `main.rs`,
//! so the load benchmark's ratio is the cost of the service's own work (the card rules, the BIN
//! index, metrics, request ids): a multi-threaded Tokio runtime with one worker per core,
//! TCP_NODELAY on accepted connections, the same HTTP/2 limits (from `server::http2_server`:
//! streams per connection, reset streams, header list size, keepalive), the 128 KiB request
//! limit, the same services on the router (health and reflection beside the card lookup
//! service), and the same allocator (mimalloc).
//!
//! The service is written the way tonic's generated `CardLookupServiceServer` is (a path match
//! and `tonic::server::Grpc::unary` with the prost codec), rather than by implementing the
//! generated trait, so the baseline keeps compiling as RPCs are added to the proto.
//!
//! Run: `cargo run --release --example bare_server -- 127.0.0.1:0 [ANSWERS]` (the address to
//! listen on, port 0 picking a free one; ANSWERS a directory holding `Validate.answer`,
//! `LookupBin.answer` and `MaskCard.answer`, each one encoded response message, as load.sh
//! saves them from the service; a missing file means the empty message). It prints
//! `serving gRPC on ADDR` and serves until killed.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use card_lookup::proto::FILE_DESCRIPTOR_SET;
use card_lookup::proto::cardlookup::v1 as pb;
use card_lookup::server::{MAX_REQUEST_BYTES, http2_server};
use tokio::net::TcpListener;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The allocator the service uses (src/main.rs), so both ends are measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One unary method that decodes `Req` and answers a copy of its canned `Res`.
struct Canned<Req, Res> {
    answer: Arc<Res>,
    request: std::marker::PhantomData<fn(Req)>,
}

impl<Req, Res> UnaryService<Req> for Canned<Req, Res>
where
    Req: Send + 'static,
    Res: Clone + Send + Sync + 'static,
{
    type Response = Res;
    type Future = BoxFuture<Response<Res>, Status>;

    fn call(&mut self, _request: Request<Req>) -> Self::Future {
        // A copy per call, as the service builds a message per call.
        let answer = Res::clone(&self.answer);
        Box::pin(async { Ok(Response::new(answer)) })
    }
}

/// Decodes and answers one unary call of `method` as generated servers do.
async fn unary<Req, Res, B>(
    answer: Arc<Res>,
    request: http::Request<B>,
) -> http::Response<tonic::body::Body>
where
    Req: prost::Message + Default + Send + 'static,
    Res: prost::Message + Clone + Default + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    let codec = tonic_prost::ProstCodec::<Res, Req>::default();
    let mut grpc = Grpc::new(codec).apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
    let service = Canned {
        answer,
        request: std::marker::PhantomData,
    };
    grpc.unary(service, request).await
}

/// `cardlookup.v1.CardLookupService`, answering its canned messages.
#[derive(Debug, Clone, Default)]
struct BareCardLookup {
    validate: Arc<pb::ValidateResponse>,
    lookup_bin: Arc<pb::LookupBinResponse>,
    mask_card: Arc<pb::MaskCardResponse>,
}

impl BareCardLookup {
    /// Reads the canned answers from `dir` (see the crate docs); none without a directory.
    fn read(dir: Option<&Path>) -> Result<Self, Box<dyn std::error::Error>> {
        fn answer<M: prost::Message + Default>(
            dir: Option<&Path>,
            rpc: &str,
        ) -> Result<Arc<M>, Box<dyn std::error::Error>> {
            let Some(path) = dir.map(|dir| dir.join(format!("{rpc}.answer"))) else {
                return Ok(Arc::default());
            };
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Arc::new(M::decode(bytes.as_slice())?)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Arc::default()),
                Err(error) => Err(format!("{}: {error}", path.display()).into()),
            }
        }
        Ok(Self {
            validate: answer(dir, "Validate")?,
            lookup_bin: answer(dir, "LookupBin")?,
            mask_card: answer(dir, "MaskCard")?,
        })
    }
}

impl NamedService for BareCardLookup {
    const NAME: &'static str = "cardlookup.v1.CardLookupService";
}

impl<B> Service<http::Request<B>> for BareCardLookup
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match request.uri().path() {
            "/cardlookup.v1.CardLookupService/Validate" => {
                let answer = Arc::clone(&self.validate);
                Box::pin(
                    async move { Ok(unary::<pb::ValidateRequest, _, B>(answer, request).await) },
                )
            }
            "/cardlookup.v1.CardLookupService/LookupBin" => {
                let answer = Arc::clone(&self.lookup_bin);
                Box::pin(
                    async move { Ok(unary::<pb::LookupBinRequest, _, B>(answer, request).await) },
                )
            }
            "/cardlookup.v1.CardLookupService/MaskCard" => {
                let answer = Arc::clone(&self.mask_card);
                Box::pin(
                    async move { Ok(unary::<pb::MaskCardRequest, _, B>(answer, request).await) },
                )
            }
            _ => Box::pin(async { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args
        .next()
        .ok_or("usage: bare_server ADDRESS [ANSWERS] (for example 127.0.0.1:0)")?;
    let service = BareCardLookup::read(args.next().as_deref().map(Path::new))?;
    // As `main.rs`: the multi-threaded runtime, one worker per core.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(&address, service))
}

async fn serve(address: &str, service: BareCardLookup) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(address).await?;
    println!("serving gRPC on {}", listener.local_addr()?);

    let (_health, health_service) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // The service's HTTP/2 settings, from the same function.
    http2_server()
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(service)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
