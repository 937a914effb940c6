//! The operations of the driver protocol, one per vector group type, and their implementation
//! over coffer-core.
//!
//! [`OPS`] says, for each group type, which test fields are *inputs* (sent to the
//! implementation), which are *outputs* (kept by the runner and compared with the answer) and
//! which are informational (intermediate values the runner neither sends nor checks).
//! [`handle`] is coffer-core behind the protocol: the default in-process mode and the `driver`
//! subcommand both use it.

use std::collections::BTreeMap;

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::{AccountId, LinkId, NodeId, ShareId};
use coffer_core::primitives::{
    hkdf, hpke_open, hpke_seal, AgreementPublic, AgreementSecret, Argon2Params, SecretKey,
    SigningKey, VerifyingKey,
};
use coffer_core::{DecodeError, Error};
use coffer_vectors::format::Test;
use coffer_vectors::rng::ReplayRng;
use serde_json::{json, Map, Value};

use crate::protocol::{Response, DRIVER_ERROR};

/// Why an operation produced no output.
#[derive(Debug)]
pub enum OpError {
    /// The operation failed with a coffer-core error (its class is the failure class).
    Core(Error),
    /// The request could not be processed (missing or ill-typed input, randomness not consumed
    /// exactly): answered with [`DRIVER_ERROR`].
    Driver(String),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Core(e)
    }
}

impl From<DecodeError> for OpError {
    fn from(e: DecodeError) -> Self {
        OpError::Core(e.into())
    }
}

type OpResult = Result<Value, OpError>;
type Handler = fn(&Map<String, Value>, &In<'_>) -> OpResult;
type Split = fn(&Test, &OpSpec) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)>;

/// One operation of the protocol.
pub struct OpSpec {
    /// The operation name: the vector group type.
    pub name: &'static str,
    /// The vector file(s) whose groups have this type.
    pub files: &'static str,
    /// The spec section it exercises.
    pub section: &'static str,
    /// Test fields sent as `input` (those present in the test).
    pub inputs: &'static [&'static str],
    /// Test fields compared with the answer's `ok` object (for valid tests, those present).
    pub outputs: &'static [&'static str],
    /// Test fields neither sent nor compared (intermediate values, documentation).
    pub informational: &'static [&'static str],
    /// coffer-core's implementation.
    pub handler: Handler,
    /// A non-default split of a test into input and expected output.
    pub split: Option<Split>,
}

/// A request's `input` object, with typed accessors.
pub struct In<'a>(pub &'a Map<String, Value>);

fn bad(msg: impl Into<String>) -> OpError {
    OpError::Driver(msg.into())
}

fn hex_of(v: &Value, name: &str) -> Result<Vec<u8>, OpError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{name}: not a hex string")))?;
    hex::decode(s).map_err(|e| bad(format!("{name}: {e}")))
}

fn arr_of<const N: usize>(v: &Value, name: &str) -> Result<[u8; N], OpError> {
    let b = hex_of(v, name)?;
    b.as_slice()
        .try_into()
        .map_err(|_| bad(format!("{name}: {} bytes, not {N}", b.len())))
}

impl In<'_> {
    fn get(&self, k: &str) -> Result<&Value, OpError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Err(bad(format!("missing input {k}"))),
            Some(v) => Ok(v),
        }
    }
    fn present(&self, k: &str) -> bool {
        !matches!(self.0.get(k), None | Some(Value::Null))
    }
    fn str(&self, k: &str) -> Result<&str, OpError> {
        self.get(k)?
            .as_str()
            .ok_or_else(|| bad(format!("{k}: not a string")))
    }
    fn hex(&self, k: &str) -> Result<Vec<u8>, OpError> {
        hex_of(self.get(k)?, k)
    }
    fn opt_hex(&self, k: &str) -> Result<Option<Vec<u8>>, OpError> {
        if self.present(k) {
            self.hex(k).map(Some)
        } else {
            Ok(None)
        }
    }
    fn arr<const N: usize>(&self, k: &str) -> Result<[u8; N], OpError> {
        arr_of(self.get(k)?, k)
    }
    fn key(&self, k: &str) -> Result<SecretKey, OpError> {
        Ok(SecretKey::from_bytes(self.arr(k)?))
    }
    fn node_id(&self, k: &str) -> Result<NodeId, OpError> {
        Ok(NodeId::from_bytes(self.arr(k)?))
    }
    fn u64(&self, k: &str) -> Result<u64, OpError> {
        self.get(k)?
            .as_u64()
            .ok_or_else(|| bad(format!("{k}: not an unsigned integer")))
    }
    fn opt_u64(&self, k: &str) -> Result<Option<u64>, OpError> {
        if self.present(k) {
            self.u64(k).map(Some)
        } else {
            Ok(None)
        }
    }
    fn usize(&self, k: &str) -> Result<usize, OpError> {
        usize::try_from(self.u64(k)?).map_err(|_| bad(format!("{k}: too large")))
    }
    fn hex_list(&self, k: &str) -> Result<Vec<Vec<u8>>, OpError> {
        self.get(k)?
            .as_array()
            .ok_or_else(|| bad(format!("{k}: not an array")))?
            .iter()
            .map(|v| hex_of(v, k))
            .collect()
    }
    fn rng(&self) -> Result<ReplayRng, OpError> {
        Ok(ReplayRng::new(self.hex("randomness")?))
    }
}

fn used(rng: &ReplayRng, what: &str) -> Result<(), OpError> {
    if rng.fully_used() {
        Ok(())
    } else {
        Err(bad(format!("{what} not consumed exactly")))
    }
}

fn h(b: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(b))
}

fn opt_h<T: AsRef<[u8]>>(b: Option<T>) -> Value {
    b.map_or(Value::Null, h)
}

fn hex_list(items: impl IntoIterator<Item = Vec<u8>>) -> Value {
    Value::Array(items.into_iter().map(h).collect())
}

fn param_str<'a>(params: &'a Map<String, Value>, k: &str) -> Result<&'a str, OpError> {
    params
        .get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing parameter {k}")))
}

/// Looks up an operation.
pub fn find(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|o| o.name == name)
}

/// coffer-core's answer to one request.
pub fn handle(op: &str, params: &Map<String, Value>, input: &Map<String, Value>) -> Response {
    let Some(spec) = find(op) else {
        return Response::Unsupported;
    };
    match (spec.handler)(params, &In(input)) {
        Ok(Value::Object(m)) => Response::Ok(m),
        Ok(_) => Response::Error {
            class: DRIVER_ERROR.into(),
            message: Some("handler returned a non-object".into()),
        },
        Err(OpError::Core(e)) => Response::Error {
            class: e.class().into(),
            message: None,
        },
        Err(OpError::Driver(m)) => Response::Error {
            class: DRIVER_ERROR.into(),
            message: Some(m),
        },
    }
}

fn pick(test: &Test, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|k| test.fields.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// Splits a test into the request `input` and the expected outputs (empty for invalid tests).
pub fn split(op: &str, test: &Test) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let spec = find(op).ok_or_else(|| anyhow::anyhow!("no operation for group type {op}"))?;
    if let Some(f) = spec.split {
        return f(test, spec);
    }
    let expected = if test.is_valid() {
        pick(test, spec.outputs)
    } else {
        Map::new()
    };
    Ok((pick(test, spec.inputs), expected))
}

// ---------------------------------------------------------------------------------------------
// §1 encoding

coffer_core::cbor_struct! {
    /// The test-only structure of `encoding.json`:
    /// `test-structure = [255, 1, a: uint, b: bstr .size 4, c: tstr / null, d: [* uint]]`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TestStructure (type = 255, version = 1) {
        /// An unsigned integer.
        pub a: u64,
        /// A fixed-length byte string.
        pub b: Bytes<4>,
        /// An optional text string.
        pub c: Option<String>,
        /// A list of unsigned integers.
        pub d: Vec<u64>,
    }
}

/// The test-only nesting shape of `encoding.json`: `nest = [* nest]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Nest(pub Vec<Nest>);

fn nest_depth(n: &Nest) -> u64 {
    1 + n.0.iter().map(nest_depth).max().unwrap_or(0)
}

fn op_base64url(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let text = i.str("text")?;
    let bytes = coffer_core::encoding::b64url_decode(text).map_err(Error::from)?;
    if coffer_core::encoding::b64url_encode(&bytes) != text {
        return Err(bad("decoded bytes do not re-encode to the text"));
    }
    Ok(json!({ "bytes": h(bytes) }))
}

fn op_cbor_decode(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let enc = i.hex("encoded")?;
    let t: TestStructure = decode(&enc)?;
    if encode(&t) != enc {
        return Err(bad("re-encoding differs"));
    }
    Ok(json!({ "decoded": { "a": t.a.to_string(), "b": h(t.b.0), "c": t.c, "d": t.d } }))
}

fn op_cbor_nest(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let enc = i.hex("encoded")?;
    let n: Nest = decode(&enc)?;
    if encode(&n) != enc {
        return Err(bad("re-encoding differs"));
    }
    Ok(json!({ "depth": nest_depth(&n) }))
}

fn op_cbor_bytes(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let enc = i.hex("encoded")?;
    let b: ByteBuf = decode(&enc)?;
    if encode(&b) != enc {
        return Err(bad("re-encoding differs"));
    }
    Ok(json!({ "bytes": h(b.into_vec()) }))
}

// ---------------------------------------------------------------------------------------------
// §2 primitives

fn op_hkdf(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let (label, context) = (i.str("label")?, i.hex("context")?);
    let len = i.usize("length")?;
    if len > 255 * 32 {
        return Err(bad("length too large"));
    }
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(&context);
    let mut okm = vec![0u8; len];
    hkdf(&i.hex("ikm")?, &i.hex("salt")?, label, &context, &mut okm);
    Ok(json!({ "info": h(info), "okm": h(okm) }))
}

fn op_ed25519_sign(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let sk = SigningKey::from_seed(&i.arr("seed")?);
    let (label, msg) = (i.str("label")?, i.hex("msg")?);
    let sig = sk.sign(label, &msg);
    let mut signed = label.as_bytes().to_vec();
    signed.push(0);
    signed.extend_from_slice(&msg);
    Ok(
        json!({ "publicKey": h(sk.verifying_key().to_bytes()), "sig": h(sig), "signedMessage": h(signed) }),
    )
}

fn op_ed25519_verify(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let vk = VerifyingKey::from_bytes(&i.arr("publicKey")?)?;
    vk.verify(i.str("label")?, &i.hex("msg")?, &i.arr("sig")?)?;
    Ok(json!({}))
}

fn op_x25519_public(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    AgreementPublic::from_bytes(&i.arr("publicKey")?)?;
    let mut out = Map::new();
    if i.present("secretKey") {
        let sk = AgreementSecret::from_bytes(i.arr("secretKey")?);
        out.insert("publicKeyOfSecret".into(), h(sk.public_key().to_bytes()));
    }
    Ok(Value::Object(out))
}

fn split_x25519(
    t: &Test,
    spec: &OpSpec,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let input = pick(t, spec.inputs);
    let mut expected = Map::new();
    if t.is_valid() && t.fields.contains_key("secretKey") {
        expected.insert(
            "publicKeyOfSecret".into(),
            Value::String(t.str("publicKey")?.into()),
        );
    }
    Ok((input, expected))
}

fn op_hpke_seal(params: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let info = hex::decode(param_str(params, "info")?).map_err(|e| bad(format!("info: {e}")))?;
    let pk = AgreementPublic::from_bytes(&i.arr("publicKey")?)?;
    let mut rng = i.rng()?;
    let (enc, ct) = hpke_seal(&pk, &info, &i.hex("aad")?, &i.hex("msg")?, &mut rng)?;
    used(&rng, "randomness")?;
    Ok(json!({ "enc": h(enc), "ct": h(ct) }))
}

fn op_hpke_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let sk = AgreementSecret::from_bytes(i.arr("secretKey")?);
    let pt = hpke_open(
        &sk,
        &i.arr("enc")?,
        &i.hex("info")?,
        &i.hex("aad")?,
        &i.hex("ct")?,
    )?;
    Ok(json!({ "msg": h(pt) }))
}

fn argon2_params(v: &Value) -> Result<Argon2Params, OpError> {
    let get = |k: &str| -> Result<u32, OpError> {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(format!("argon2 parameter {k}")))
    };
    Ok(Argon2Params {
        m_kib: get("mKib")?,
        t: get("t")?,
        p: get("p")?,
    })
}

fn op_argon2_check(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    argon2_params(i.get("params")?)?.check()?;
    Ok(json!({}))
}

fn op_argon2_derive(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let k = argon2_params(i.get("params")?)?.derive(&i.hex("password")?, &i.hex("salt")?)?;
    Ok(json!({ "key": h(k.expose()) }))
}

// ---------------------------------------------------------------------------------------------
// §3 seal

fn op_seal_encrypt(params: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let mut rng = i.rng()?;
    let sealed = coffer_core::seal::seal(
        &i.key("key")?,
        param_str(params, "label")?,
        &i.hex("aad")?,
        &i.hex("msg")?,
        &mut rng,
    );
    used(&rng, "randomness")?;
    Ok(json!({ "sealed": h(sealed) }))
}

fn op_seal_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let pt = coffer_core::seal::open(
        &i.key("key")?,
        i.str("label")?,
        &i.hex("aad")?,
        &i.hex("sealed")?,
    )?;
    Ok(json!({ "msg": h(pt.as_slice()) }))
}

// ---------------------------------------------------------------------------------------------
// §4 content

/// The plaintext of the content vectors: byte `i` is `i mod 251`.
pub fn content_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn op_content_encrypt(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::content;
    let key = i.key("key")?;
    let len = i.usize("msgLen")?;
    if len > (1 << 26) {
        return Err(bad("msgLen too large"));
    }
    let salt: [u8; 32] = i.arr("randomness")?;
    let (pk, commitment) = content::payload_key(&key, &salt);
    let mut rng = ReplayRng::new(salt.to_vec());
    let ct = content::encrypt(&key, &content_pattern(len), &mut rng);
    used(&rng, "randomness")?;
    let header = ct.get(..content::HEADER_LEN).unwrap_or_default().to_vec();
    Ok(
        json!({ "payloadKey": h(pk.expose()), "commitment": h(commitment), "header": h(header), "ciphertext": h(ct) }),
    )
}

fn op_content_decrypt(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let pt = coffer_core::content::decrypt(&i.key("key")?, &i.hex("ciphertext")?)?;
    Ok(json!({ "msg": h(pt) }))
}

fn split_content_decrypt(
    t: &Test,
    spec: &OpSpec,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let mut expected = Map::new();
    if t.is_valid() {
        let len = usize::try_from(t.u64("msgLen")?)?;
        expected.insert(
            "msg".into(),
            Value::String(hex::encode(content_pattern(len))),
        );
    }
    Ok((pick(t, spec.inputs), expected))
}

fn op_content_range(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::content;
    let ct_len = i.u64("ciphertextLen")?;
    let range = i.u64("rangeStart")?..i.u64("rangeEnd")?;
    let ct_range = content::ciphertext_range(ct_len, range.clone())?;
    let pt = content::decrypt_range(
        &i.key("key")?,
        &i.hex("header")?,
        ct_len,
        range,
        &i.hex("chunks")?,
    )?;
    Ok(json!({ "ctRangeStart": ct_range.start, "ctRangeEnd": ct_range.end, "msg": h(pt) }))
}

// ---------------------------------------------------------------------------------------------
// §5 metadata

fn op_metadata_seal(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::metadata;
    let node_key = i.key("nodeKey")?;
    let node_id = i.node_id("nodeId")?;
    let revision = i.u64("revision")?;
    let media = if i.present("mediaType") {
        Some(i.str("mediaType")?.to_owned())
    } else {
        None
    };
    let digest = match i.opt_hex("contentDigest")? {
        Some(d) => Some(
            <[u8; 32]>::try_from(d.as_slice()).map_err(|_| bad("contentDigest: not 32 bytes"))?,
        ),
        None => None,
    };
    let m = metadata::Metadata::new(
        i.str("name")?.to_owned(),
        i.u64("size")?,
        i.u64("mtime")?,
        media,
        digest,
    )?;
    let mut rng = i.rng()?;
    let sealed = metadata::seal_metadata(&node_key, &node_id, revision, &m, &mut rng);
    used(&rng, "randomness")?;
    Ok(json!({
        "metadataKey": h(metadata::metadata_key(&node_key).expose()),
        "aad": h(metadata::metadata_aad(&node_id, revision)),
        "plaintext": h(encode(&m)),
        "sealed": h(sealed),
    }))
}

fn op_metadata_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let m = coffer_core::metadata::open_metadata(
        &i.key("nodeKey")?,
        &i.node_id("nodeId")?,
        i.u64("revision")?,
        &i.hex("sealed")?,
    )?;
    let mut out = metadata_json(&m);
    if let Value::Object(o) = &mut out {
        o.insert("plaintext".into(), h(encode(&m)));
    }
    Ok(out)
}

fn metadata_json(m: &coffer_core::metadata::Metadata) -> Value {
    json!({
        "name": m.name(),
        "size": m.size(),
        "mtime": m.mtime(),
        "mediaType": m.media_type(),
        "contentDigest": opt_h(m.content_digest()),
    })
}

// ---------------------------------------------------------------------------------------------
// §6 account and identity

fn account_id(i: &In<'_>) -> Result<AccountId, OpError> {
    Ok(AccountId::from_bytes(i.arr("accountId")?))
}

fn master_key(i: &In<'_>) -> Result<coffer_core::account::MasterKey, OpError> {
    Ok(coffer_core::account::MasterKey {
        key: i.key("masterKey")?,
        generation: i.u64("masterKeyGeneration")?,
    })
}

fn op_master_key_wrap(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{derive_kek, wrap_master_key, ExportKey, MasterKeyContext};
    let export = ExportKey::from_bytes(i.arr("exportKey")?);
    let id = account_id(i)?;
    let mk = master_key(i)?;
    let aad = encode(&MasterKeyContext {
        account_id: id,
        master_key_generation: mk.generation,
    });
    let mut rng = i.rng()?;
    let wrapped = wrap_master_key(&export, &id, &mk, &mut rng);
    used(&rng, "randomness")?;
    Ok(json!({ "kek": h(derive_kek(&export, &id).expose()), "aad": h(aad), "wrapped": h(wrapped) }))
}

fn op_master_key_unwrap(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{unwrap_master_key, ExportKey};
    let export = ExportKey::from_bytes(i.arr("exportKey")?);
    let mk = unwrap_master_key(
        &export,
        &account_id(i)?,
        i.u64("masterKeyGeneration")?,
        &i.hex("wrapped")?,
    )?;
    Ok(json!({ "masterKey": h(mk.key.expose()) }))
}

fn op_secrets_seal(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{
        seal_secrets, AccountSecrets, IdentityKeys, SecretsContext, LABEL_SECRETS,
    };
    let mk = master_key(i)?;
    let id = account_id(i)?;
    let ig = i.u64("identityGeneration")?;
    let secrets = AccountSecrets {
        identity_generation: ig,
        identity: IdentityKeys {
            signing: SigningKey::from_seed(&i.arr("signingSeed")?),
            agreement: AgreementSecret::from_bytes(i.arr("agreementSecret")?),
        },
        root_node_id: i.node_id("rootNodeId")?,
        root_node_key: i.key("rootNodeKey")?,
    };
    let aad = encode(&SecretsContext {
        account_id: id,
        master_key_generation: mk.generation,
        identity_generation: ig,
    });
    let mut rng = i.rng()?;
    let sealed = seal_secrets(&mk, &id, &secrets, &mut rng);
    used(&rng, "randomness")?;
    let pt = coffer_core::seal::open(&mk.key, LABEL_SECRETS, &aad, &sealed)?;
    Ok(json!({ "aad": h(aad), "sealed": h(sealed), "plaintext": h(pt.as_slice()) }))
}

fn op_secrets_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let s = coffer_core::account::open_secrets(
        &master_key(i)?,
        &account_id(i)?,
        i.u64("identityGeneration")?,
        &i.hex("sealed")?,
    )?;
    Ok(json!({
        "signingSeed": h(s.identity.signing.seed()),
        "agreementSecret": h(s.identity.agreement.expose()),
        "rootNodeId": h(s.root_node_id.as_bytes()),
        "rootNodeKey": h(s.root_node_key.expose()),
    }))
}

fn op_unlock(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{unlock, ExportKey};
    let a = unlock(
        &ExportKey::from_bytes(i.arr("exportKey")?),
        &account_id(i)?,
        &i.hex("keyBundle")?,
    )?;
    Ok(json!({
        "masterKey": h(a.master_key.key.expose()),
        "masterKeyGeneration": a.master_key.generation,
        "identityGeneration": a.secrets.identity_generation,
        "rootNodeKey": h(a.secrets.root_node_key.expose()),
    }))
}

fn op_deletion_proof(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{verify_deletion_proof, SessionKey};
    verify_deletion_proof(
        &SessionKey::from_bytes(i.arr("sessionKey")?),
        &account_id(i)?,
        i.str("userName")?,
        &i.hex("proof")?,
    )?;
    Ok(json!({}))
}

const OPAQUE_SIGNUP_INPUTS: &[&str] = &[
    "setupRandomness",
    "password",
    "registrationStartRandomness",
    "accountId",
    "created",
    "registerRandomness",
    "loginPassword",
    "loginStartRandomness",
    "serverLoginRandomness",
    "loginFinishRandomness",
];
const OPAQUE_LOGIN_INPUTS: &[&str] = &[
    "serverSetup",
    "passwordFile",
    "loginPassword",
    "loginStartRandomness",
    "serverLoginRandomness",
    "loginFinishRandomness",
];

fn split_opaque(
    t: &Test,
    spec: &OpSpec,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    if t.is_valid() {
        Ok((pick(t, OPAQUE_SIGNUP_INPUTS), pick(t, spec.outputs)))
    } else {
        Ok((pick(t, OPAQUE_LOGIN_INPUTS), Map::new()))
    }
}

fn op_opaque(params: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::{
        login_finish, login_start, register, registration_start, server_login_finish,
        server_login_start, server_registration_finish, server_registration_start, unlock,
        OpaqueIdentities, ServerLoginState, ServerSetup,
    };
    let ids = OpaqueIdentities {
        user_name: param_str(params, "userName")?,
        server_identity: param_str(params, "serverIdentity")?,
    };
    let mut out = Map::new();
    let signup = i.present("setupRandomness");
    let (setup, file, bundle) = if signup {
        let mut r = ReplayRng::new(i.hex("setupRandomness")?);
        let setup = ServerSetup::generate(&mut r);
        used(&r, "setupRandomness")?;
        let password = i.hex("password")?;
        let mut r = ReplayRng::new(i.hex("registrationStartRandomness")?);
        let (state, request) = registration_start(&password, &mut r)?;
        used(&r, "registrationStartRandomness")?;
        let response = server_registration_start(&setup, &request, &ids)?;
        let mut r = ReplayRng::new(i.hex("registerRandomness")?);
        let reg = register(
            state,
            &password,
            &response,
            &ids,
            account_id(i)?,
            i.u64("created")?,
            &mut r,
        )?;
        used(&r, "registerRandomness")?;
        let file = server_registration_finish(&reg.registration_upload)?;
        out.insert("serverSetup".into(), h(setup.to_bytes().as_slice()));
        out.insert("registrationRequest".into(), h(&request));
        out.insert("registrationResponse".into(), h(&response));
        out.insert("registrationUpload".into(), h(&reg.registration_upload));
        out.insert("keyBundle".into(), h(&reg.key_bundle));
        out.insert("signedIdentity".into(), h(&reg.signed_identity));
        out.insert("passwordFile".into(), h(&file));
        (setup, file, Some(reg.key_bundle))
    } else {
        (
            ServerSetup::from_bytes(&i.hex("serverSetup")?)?,
            i.hex("passwordFile")?,
            None,
        )
    };
    let pw = i.hex("loginPassword")?;
    let mut r = ReplayRng::new(i.hex("loginStartRandomness")?);
    let (state, request) = login_start(&pw, &mut r)?;
    used(&r, "loginStartRandomness")?;
    let mut r = ReplayRng::new(i.hex("serverLoginRandomness")?);
    let (server_state, response) = server_login_start(&setup, Some(&file), &request, &ids, &mut r)?;
    used(&r, "serverLoginRandomness")?;
    out.insert("credentialRequest".into(), h(&request));
    out.insert("serverLoginState".into(), h(server_state.as_bytes()));
    out.insert("credentialResponse".into(), h(&response));
    let mut r = ReplayRng::new(i.hex("loginFinishRandomness")?);
    let fin = login_finish(state, &pw, &response, &ids, &mut r)?;
    used(&r, "loginFinishRandomness")?;
    let server_key = server_login_finish(
        &ServerLoginState::from_bytes(server_state.as_bytes()),
        &fin.finalization,
    )?;
    if server_key != fin.session_key {
        return Err(bad("client and server session keys differ"));
    }
    out.insert("credentialFinalization".into(), h(&fin.finalization));
    out.insert("sessionKey".into(), h(fin.session_key.expose()));
    out.insert("exportKey".into(), h(fin.export_key.expose()));
    if let Some(b) = bundle {
        let unlocked = unlock(&fin.export_key, &account_id(i)?, &b)?;
        out.insert("masterKey".into(), h(unlocked.master_key.key.expose()));
    }
    Ok(Value::Object(out))
}

const IDENTITY_GEN_INPUTS: &[&str] = &["signingSeed", "agreementSecret", "created"];
const IDENTITY_GEN_OUTPUTS: &[&str] = &[
    "generation",
    "signingKey",
    "agreementKey",
    "previous",
    "record",
    "selfSignature",
    "predecessorSignature",
    "signed",
    "fingerprint",
];

fn split_identity_create(
    t: &Test,
    _: &OpSpec,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let gens = t
        .fields
        .get("generations")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("missing generations"))?;
    let sub = |g: &Value, names: &[&str]| -> Value {
        Value::Object(
            names
                .iter()
                .filter_map(|k| g.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect(),
        )
    };
    let mut input = pick(t, &["userName"]);
    input.insert(
        "generations".into(),
        Value::Array(gens.iter().map(|g| sub(g, IDENTITY_GEN_INPUTS)).collect()),
    );
    let mut expected = pick(t, &["headFingerprint"]);
    expected.insert(
        "generations".into(),
        Value::Array(gens.iter().map(|g| sub(g, IDENTITY_GEN_OUTPUTS)).collect()),
    );
    Ok((input, expected))
}

fn op_identity_create(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::identity::{
        create_identity, rotate_identity, verify_chain, IdentityKeys, SignedIdentity,
    };
    let user = i.str("userName")?;
    let gens = i
        .get("generations")?
        .as_array()
        .ok_or_else(|| bad("generations: not an array"))?;
    let mut prev: Option<(Vec<u8>, IdentityKeys)> = None;
    let mut chain = Vec::new();
    let mut outs = Vec::new();
    let mut head_fp = String::new();
    for g in gens {
        let gi = g
            .as_object()
            .ok_or_else(|| bad("generation: not an object"))?;
        let gi = In(gi);
        let keys = IdentityKeys {
            signing: SigningKey::from_seed(&gi.arr("signingSeed")?),
            agreement: AgreementSecret::from_bytes(gi.arr("agreementSecret")?),
        };
        let created = gi.u64("created")?;
        let (signed, previous) = match &prev {
            None => (create_identity(&keys, user, created)?, None),
            Some((p, pk)) => (
                rotate_identity(p, &pk.signing, &keys, created)?,
                Some(coffer_core::primitives::sha256(p)),
            ),
        };
        let s: SignedIdentity = decode(&signed)?;
        chain.push(signed.clone());
        let head = verify_chain(&chain)?;
        head_fp = head.fingerprint.to_string();
        let mut o = Map::new();
        o.insert("generation".into(), json!(head.generation));
        o.insert(
            "signingKey".into(),
            h(keys.signing.verifying_key().to_bytes()),
        );
        o.insert(
            "agreementKey".into(),
            h(keys.agreement.public_key().to_bytes()),
        );
        o.insert("previous".into(), opt_h(previous));
        o.insert("record".into(), h(s.record.as_slice()));
        o.insert("selfSignature".into(), h(s.self_signature.0));
        o.insert(
            "predecessorSignature".into(),
            opt_h(s.predecessor_signature.map(|p| p.0)),
        );
        o.insert("signed".into(), h(&signed));
        o.insert("fingerprint".into(), Value::String(head_fp.clone()));
        outs.push(Value::Object(o));
        prev = Some((signed, keys));
    }
    Ok(json!({ "generations": outs, "headFingerprint": head_fp }))
}

fn chain(i: &In<'_>) -> Result<Vec<Vec<u8>>, OpError> {
    i.hex_list("chain")
}

fn op_identity_chain(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let head = coffer_core::account::identity::verify_chain(&chain(i)?)?;
    Ok(json!({ "generation": head.generation, "fingerprint": head.fingerprint.to_string() }))
}

fn op_identity_pin(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::account::identity::{verify_pinned, Fingerprint, IdentityPin};
    let pin = IdentityPin {
        user_name: i.str("pinUserName")?.into(),
        generation: i.u64("pinGeneration")?,
        fingerprint: Fingerprint::parse(i.str("pinFingerprint")?).map_err(Error::from)?,
    };
    let head = verify_pinned(&pin, &chain(i)?)?;
    Ok(json!({ "generation": head.generation, "fingerprint": head.fingerprint.to_string() }))
}

fn op_fingerprint_parse(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let fp =
        coffer_core::account::identity::Fingerprint::parse(i.str("text")?).map_err(Error::from)?;
    Ok(json!({ "fingerprint": fp.to_string() }))
}

// ---------------------------------------------------------------------------------------------
// §7 tree

fn node_record(bytes: &[u8]) -> Result<coffer_core::tree::NodeRecord, OpError> {
    let r: coffer_core::tree::NodeRecord = decode(bytes)?;
    r.check_structure()?;
    Ok(r)
}

fn op_node_create(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::tree::{
        self, create_file, create_folder, file_key_aad, node_key_aad, FileContent, FolderKey,
        NewNode, SealedMetadata,
    };
    let author = SigningKey::from_seed(&i.arr("authorSeed")?);
    let parent = FolderKey {
        folder_id: i.node_id("parentId")?,
        generation: i.u64("parentGeneration")?,
        key: i.key("parentKey")?,
    };
    let m = SealedMetadata {
        revision: i.u64("metadataRevision")?,
        sealed: i.hex("sealedMetadata")?,
    };
    let mut rng = i.rng()?;
    let node = NewNode::generate(&mut rng);
    let time = i.u64("time")?;
    let mut out = Map::new();
    let (rec, signed) = if i.u64("kind")? == tree::KIND_FILE {
        let c = FileContent {
            file_key: i.key("fileKey")?,
            content_revision: i.u64("contentRevision")?,
            ciphertext_length: i.u64("ciphertextLength")?,
        };
        let r = create_file(&author, &parent, &node, m, &c, time, &mut rng)?;
        out.insert(
            "fileKeyAad".into(),
            h(file_key_aad(node.node_id, c.content_revision)),
        );
        out.insert(
            "sealedFileKey".into(),
            opt_h(r.0.file.as_ref().map(|f| f.sealed_file_key.to_vec())),
        );
        r
    } else {
        create_folder(&author, &parent, &node, m, time, &mut rng)?
    };
    used(&rng, "randomness")?;
    out.insert("nodeId".into(), h(node.node_id.as_bytes()));
    out.insert("nodeKey".into(), h(node.node_key.expose()));
    out.insert(
        "nodeKeyAad".into(),
        h(node_key_aad(
            parent.folder_id,
            node.node_id,
            parent.generation,
        )),
    );
    out.insert(
        "sealedNodeKey".into(),
        opt_h(rec.sealed_node_key.as_ref().map(|b| b.to_vec())),
    );
    out.insert("record".into(), h(signed.record.as_slice()));
    out.insert("signature".into(), h(signed.signature.0));
    out.insert("signedNode".into(), h(encode(&signed)));
    Ok(Value::Object(out))
}

fn op_node_verify(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::tree::{verify_node, NodeExpectation};
    let authors = i
        .hex_list("authors")?
        .iter()
        .map(|b| {
            let a: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| bad("authors: not 32 bytes"))?;
            VerifyingKey::from_bytes(&a).map_err(OpError::from)
        })
        .collect::<Result<Vec<_>, OpError>>()?;
    let parent = if i.present("expectedParentId") {
        Some((
            i.node_id("expectedParentId")?,
            i.u64("expectedParentGeneration")?,
        ))
    } else {
        None
    };
    let expected = NodeExpectation {
        node_id: i.node_id("expectedNodeId")?,
        parent,
        key_generation: i.opt_u64("expectedKeyGeneration")?,
    };
    let rec = verify_node(&i.hex("signedNode")?, &expected, &authors)?;
    Ok(json!({ "record": h(encode(&rec)) }))
}

fn op_folder_key_at(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let current = i.key("currentKey")?;
    let target = i.u64("generation")?;
    let rec = node_record(&i.hex("folderRecord")?)?;
    let fk = rec.folder_key(current);
    let k = rec.folder_key_at(&fk, target)?;
    Ok(json!({ "key": h(k.expose()) }))
}

fn op_node_key_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let pkey = i.key("parentKey")?;
    let parent = node_record(&i.hex("parentRecord")?)?;
    let child = node_record(&i.hex("childRecord")?)?;
    let k = child.open_node_key(&parent, &parent.folder_key(pkey))?;
    Ok(json!({ "nodeKey": h(k.expose()) }))
}

fn op_file_key_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let rec = node_record(&i.hex("fileRecord")?)?;
    let k = rec.open_file_key(&i.key("nodeKey")?)?;
    Ok(json!({ "fileKey": h(k.expose()) }))
}

// ---------------------------------------------------------------------------------------------
// §8 sharing

fn op_share_sign(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let owner = SigningKey::from_seed(&i.arr("ownerSeed")?);
    let record: coffer_core::share::ShareRecord = decode(&i.hex("record")?)?;
    let signed = record.sign(&owner)?;
    Ok(json!({ "signature": h(signed.signature.0), "signedShare": h(encode(&signed)) }))
}

fn op_share_verify(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let owner = VerifyingKey::from_bytes(&i.arr("ownerPublic")?)?;
    let r = coffer_core::share::verify_share(
        &i.hex("signedShare")?,
        ShareId::from_bytes(i.arr("shareId")?),
        &owner,
        i.u64("minGeneration")?,
    )?;
    Ok(json!({ "record": h(encode(&r)) }))
}

fn op_grant_issue(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::share::{issue_grant, Grant, GranterKeys, ShareRecord};
    let key = SigningKey::from_seed(&i.arr("granterSeed")?);
    let name = i.str("granterName")?.to_owned();
    let granter = GranterKeys {
        signing_key: &key,
        user_name: &name,
        identity_generation: i.u64("granterIdentityGeneration")?,
    };
    let record: ShareRecord = decode(&i.hex("shareRecord")?)?;
    let member = record
        .members
        .get(i.usize("memberIndex")?)
        .ok_or_else(|| bad("memberIndex out of range"))?;
    let fk = coffer_core::tree::FolderKey {
        folder_id: i.node_id("folderId")?,
        generation: record.generation,
        key: i.key("folderKey")?,
    };
    let mut rng = i.rng()?;
    let sg = issue_grant(&granter, &record, member, &fk, &mut rng)?;
    used(&rng, "randomness")?;
    let grant: Grant = decode(&sg.grant)?;
    Ok(json!({
        "grantInfo": h(grant.info()), "enc": h(grant.enc.0), "ciphertext": h(grant.ciphertext.as_slice()),
        "grant": h(sg.grant.as_slice()), "signature": h(sg.signature.0), "signedGrant": h(encode(&sg)),
    }))
}

fn op_grant_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::share::{open_grant, GrantExpectation, PinnedIdentity, RecipientKeys};
    let secret = AgreementSecret::from_bytes(i.arr("recipientSecret")?);
    let granter = PinnedIdentity {
        user_name: i.str("granterName")?.to_owned(),
        identity_generation: i.u64("granterIdentityGeneration")?,
        ed25519: VerifyingKey::from_bytes(&i.arr("granterPublic")?)?,
        // The granter's X25519 key plays no part in opening a grant.
        x25519: secret.public_key(),
    };
    let expected = GrantExpectation {
        share_id: ShareId::from_bytes(i.arr("shareId")?),
        generation: i.u64("generation")?,
        granter,
    };
    let name = i.str("recipientName")?.to_owned();
    let me = RecipientKeys {
        user_name: &name,
        identity_generation: i.u64("recipientIdentityGeneration")?,
        secret: &secret,
    };
    let (_, k) = open_grant(&i.hex("signedGrant")?, &expected, &me)?;
    Ok(json!({ "folderKey": h(k.expose()) }))
}

// ---------------------------------------------------------------------------------------------
// §9 rotation

fn node_records(i: &In<'_>, k: &str) -> Result<Vec<coffer_core::tree::NodeRecord>, OpError> {
    i.hex_list(k)?.iter().map(|b| Ok(decode(b)?)).collect()
}

fn op_member_removal(p: &Map<String, Value>, i: &In<'_>) -> OpResult {
    share_rotation(p, i, false)
}

fn op_recovery_rotation(p: &Map<String, Value>, i: &In<'_>) -> OpResult {
    share_rotation(p, i, true)
}

/// `MemberRemoval` (§9.2) and, with `recovery`, `RecoveryRotation` (§9.4 step 3): the same
/// inputs and outputs, except that a recovery removes nobody (`departed` instead of `removed`
/// and `mode`).
fn share_rotation(_: &Map<String, Value>, i: &In<'_>, recovery: bool) -> OpResult {
    use coffer_core::rotation::{
        rekey_share_for_recovery, remove_member_eager, remove_member_lazy, RecoverShare, Rekeyed,
        RekeyedFileUpdate, RemoveMember,
    };
    use coffer_core::share::{GranterKeys, ShareRecord};
    use coffer_core::tree::{FolderKey, NodeRecord, SealedMetadata};
    let owner = SigningKey::from_seed(&i.arr("ownerSeed")?);
    let name = i.str("ownerName")?.to_owned();
    let granter = GranterKeys {
        signing_key: &owner,
        user_name: &name,
        identity_generation: i.u64("ownerIdentityGeneration")?,
    };
    let share: ShareRecord = decode(&i.hex("shareRecord")?)?;
    let parent_key = FolderKey {
        folder_id: i.node_id("parentId")?,
        generation: i.u64("parentGeneration")?,
        key: i.key("parentKey")?,
    };
    let folder_key = FolderKey {
        folder_id: share.folder_id,
        generation: share.generation,
        key: i.key("folderKey")?,
    };
    let subtree = node_records(i, "subtree")?;
    let mut rng = i.rng()?;
    if recovery {
        let departed =
            i.0.get("departed")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("departed: expected an array of names"))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("departed: not a name"))
                })
                .collect::<Result<Vec<_>, _>>()?;
        let out = rekey_share_for_recovery(
            &RecoverShare {
                owner: &granter,
                share: &share,
                departed: &departed,
                parent_key: &parent_key,
                folder_key: &folder_key,
                subtree: &subtree,
                time: i.u64("time")?,
            },
            &mut rng,
        )?;
        used(&rng, "randomness")?;
        return Ok(rotation_output(&out));
    }
    let removed = i.str("removed")?.to_owned();
    let params = RemoveMember {
        owner: &granter,
        share: &share,
        removed: &removed,
        parent_key: &parent_key,
        folder_key: &folder_key,
        subtree: &subtree,
        time: i.u64("time")?,
    };
    let out = match i.str("mode")? {
        "lazy" => remove_member_lazy(&params, &mut rng)?,
        "eager" => {
            let updates = i.hex_list("eagerMetadata")?;
            let mut n = 0;
            let mut f = |_: &Rekeyed, old: &NodeRecord| {
                let sealed = updates
                    .get(n)
                    .cloned()
                    .ok_or(Error::InvalidArgument("too few updates"))?;
                n += 1;
                Ok(RekeyedFileUpdate {
                    metadata: SealedMetadata {
                        revision: 2,
                        sealed,
                    },
                    ciphertext_length: old.file.as_ref().map_or(0, |f| f.ciphertext_length),
                })
            };
            remove_member_eager(&params, &mut f, &mut rng)?
        }
        other => return Err(bad(format!("mode {other:?}"))),
    };
    used(&rng, "randomness")?;
    Ok(rotation_output(&out))
}

/// The outputs of `MemberRemoval` and `RecoveryRotation`.
fn rotation_output(out: &coffer_core::rotation::RotationOutput) -> Value {
    use coffer_core::tree::{back_chain_aad, node_key_aad};
    let node_key_aads = out.records.iter().filter_map(|r| {
        r.parent_id
            .map(|p| node_key_aad(p, r.node_id, r.parent_generation))
    });
    let back_chain_aads = out
        .records
        .iter()
        .filter(|r| r.is_folder())
        .map(|r| back_chain_aad(r.node_id, r.key_generation));
    json!({
        "nodeKeyAads": hex_list(node_key_aads),
        "backChainAads": hex_list(back_chain_aads),
        "bundle": h(encode(&out.bundle)),
        "newShareRecord": h(encode(&out.share)),
        "newRecords": hex_list(out.records.iter().map(encode)),
        "newFolderKeys": out.folder_keys.iter().map(|k| json!({
            "folderId": h(k.folder_id.as_bytes()), "generation": k.generation, "key": h(k.key.expose()),
        })).collect::<Vec<_>>(),
        "rekeyed": out.rekeyed.iter().map(|r| json!({
            "nodeId": h(r.node_id.as_bytes()), "nodeKey": h(r.node_key.expose()),
            "fileKey": h(r.file_key.expose()), "contentRevision": r.content_revision,
        })).collect::<Vec<_>>(),
    })
}

fn op_rotation_apply(p: &Map<String, Value>, i: &In<'_>) -> OpResult {
    apply_bundle(p, i, false)
}

fn op_recovery_apply(p: &Map<String, Value>, i: &In<'_>) -> OpResult {
    apply_bundle(p, i, true)
}

/// `RotationApply` (§9.2.2) and, with `recovery`, `RecoveryApply` (§9.4).
fn apply_bundle(_: &Map<String, Value>, i: &In<'_>, recovery: bool) -> OpResult {
    use coffer_core::rotation::{RotationBundle, ShareState};
    use coffer_core::tree::{NodeRecord, SignedNode};
    let share = decode(&i.hex("stateShare")?)?;
    let nodes = node_records(i, "stateNodes")?;
    let mut state = ShareState {
        share,
        nodes: nodes
            .into_iter()
            .map(|r| (r.node_id, r))
            .collect::<BTreeMap<_, _>>(),
    };
    let bundle_bytes = i.hex("bundle")?;
    let owner = VerifyingKey::from_bytes(&i.arr("ownerPublic")?)?;
    let grants = if recovery {
        state.apply_recovery_rotation(&bundle_bytes, &owner)?
    } else {
        state.apply_rotation(&bundle_bytes, &owner)?
    };
    // The new nodes in bundle order (the bundle was verified by apply_rotation).
    let bundle: RotationBundle = decode(&bundle_bytes)?;
    let mut order = Vec::new();
    for sn in &bundle.nodes {
        let s: SignedNode = decode(sn)?;
        let r: NodeRecord = decode(&s.record)?;
        order.push(r.node_id);
    }
    let mut new_nodes: Vec<Vec<u8>> = order
        .iter()
        .filter_map(|id| state.nodes.get(id))
        .map(encode)
        .collect();
    new_nodes.extend(
        state
            .nodes
            .iter()
            .filter(|(id, _)| !order.contains(id))
            .map(|(_, r)| encode(r)),
    );
    Ok(
        json!({ "newShareRecord": h(encode(&state.share)), "newNodes": hex_list(new_nodes), "grants": hex_list(grants.into_iter().map(|g| g.to_vec())) }),
    )
}

fn op_open_path(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let recs = node_records(i, "records")?;
    let mut key = i.key("folderKey")?;
    for pair in recs.windows(2) {
        key = pair[1].open_node_key(&pair[0], &pair[0].folder_key(key.clone()))?;
    }
    Ok(json!({ "nodeKey": h(key.expose()) }))
}

// ---------------------------------------------------------------------------------------------
// §10 links

fn link_target(i: &In<'_>) -> Result<coffer_core::link::LinkTarget, OpError> {
    Ok(coffer_core::link::LinkTarget {
        node_id: i.node_id("nodeId")?,
        node_kind: coffer_core::link::NodeKind::from_u64(i.u64("nodeKind")?)?,
        generation: i.u64("generation")?,
        node_key: i.key("nodeKey")?,
    })
}

fn owner_entry(i: &In<'_>, k: &str) -> Result<coffer_core::link::OwnerLinkEntry, OpError> {
    Ok(decode(&i.hex(k)?)?)
}

fn open_link_from(i: &In<'_>) -> Result<coffer_core::link::OpenedLink, OpError> {
    use coffer_core::link::{open_link, open_link_with_key, LinkUrl};
    let url = LinkUrl::parse(i.str("url")?)?;
    let record = i.hex("record")?;
    let now = i.u64("now")?;
    Ok(if let Some(pw) = i.opt_hex("password")? {
        open_link(&url, &record, Some(&pw), now)?
    } else if let Some(k) = i.opt_hex("pwKey")? {
        open_link_with_key(&url, &record, Some(&SecretKey::from_slice(&k)?), now)?
    } else {
        open_link(&url, &record, None, now)?
    })
}

fn op_link_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::link::LinkAccess;
    let o = open_link_from(i)?;
    let (node_key, drop_public) = match &o.access {
        LinkAccess::Read { node_key } => (h(node_key.expose()), Value::Null),
        LinkAccess::UploadOnly { drop_public } => (Value::Null, h(drop_public.to_bytes())),
    };
    Ok(json!({
        "nodeId": h(o.node_id.as_bytes()), "nodeKind": o.node_kind.to_u64(), "generation": o.generation,
        "permission": o.permission().to_u64(), "expiresAt": o.expires_at, "maxDownloads": o.max_downloads,
        "nodeKey": node_key, "dropPublic": drop_public,
    }))
}

fn op_link_create(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::link::{
        capability_key, create_link, password_verifier, LinkOptions, LinkRecord, NewLinkPassword,
        LABEL_CAPABILITY,
    };
    let target = link_target(i)?;
    let password = i.opt_hex("password")?;
    let params = if i.present("argon2") {
        Some(argon2_params(i.get("argon2")?)?)
    } else {
        None
    };
    let pw = match (&password, params) {
        (Some(p), Some(params)) => Some(NewLinkPassword {
            password: p,
            params,
        }),
        (None, None) => None,
        _ => return Err(bad("password and argon2 must both be present or both null")),
    };
    let options = LinkOptions {
        password: pw,
        expires_at: i.opt_u64("expiresAt")?,
        max_downloads: i.opt_u64("maxDownloads")?,
        upload_only: i
            .0
            .get("uploadOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let mut rng = i.rng()?;
    let link = create_link(&mut rng, i.str("origin")?, &target, &options, i.u64("now")?)?;
    used(&rng, "randomness")?;
    let secret = link.url.secret();
    let pw_key = link
        .owner_entry
        .password
        .as_ref()
        .map(|p| SecretKey::from_bytes(p.password_key.0));
    let record = LinkRecord::parse(&link.record)?;
    let cap_key = capability_key(secret, pw_key.as_ref());
    let verifier = pw_key.as_ref().map(|k| password_verifier(secret, k));
    let cap = coffer_core::seal::open(
        &cap_key,
        LABEL_CAPABILITY,
        &record.capability_aad(),
        &record.capability,
    )?;
    let ds = link
        .owner_entry
        .drop_secret
        .as_ref()
        .map(|d| AgreementSecret::from_bytes(d.0));
    Ok(json!({
        "url": link.url.to_string(),
        "record": h(&link.record),
        "ownerEntry": h(encode(&link.owner_entry)),
        "verifierHash": opt_h(link.verifier_hash),
        "secret": h(secret.expose()),
        "linkId": h(secret.link_id().as_bytes()),
        "linkKey": h(secret.link_key().expose()),
        "pwKey": opt_h(pw_key.as_ref().map(|k| *k.expose())),
        "salt": opt_h(record.password.as_ref().map(|p| p.salt.0)),
        "capabilityKey": h(cap_key.expose()),
        "verifier": opt_h(verifier.as_ref().map(|v| **v)),
        "capability": h(cap.as_slice()),
        "dropSecret": opt_h(ds.as_ref().map(|d| *d.expose())),
        "dropPublic": opt_h(ds.as_ref().map(|d| d.public_key().to_bytes())),
    }))
}

fn op_drop_create(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let opened = open_link_from(i)?;
    let mut rng = i.rng()?;
    let up = coffer_core::link::create_drop(&mut rng, &opened, &i.hex("metadata")?)?;
    used(&rng, "randomness")?;
    Ok(
        json!({ "nodeId": h(up.node_id.as_bytes()), "nodeKey": h(up.node_key.expose()),
                "fileKey": h(coffer_core::link::drop_file_key(&up.node_key, up.node_id).expose()),
                "envelope": h(&up.envelope) }),
    )
}

fn op_drop_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::link::{open_drop, open_drop_secret, LinkRecord};
    let record = LinkRecord::parse(&i.hex("record")?)?;
    let folder_key = SecretKey::from_slice(&i.hex("folderKey")?)?;
    let ds = open_drop_secret(&record, &folder_key)?;
    let o = open_drop(
        &ds,
        LinkId::from_bytes(i.arr("linkId")?),
        i.node_id("folderId")?,
        &i.hex("envelope")?,
    )?;
    Ok(
        json!({ "dropSecret": h(ds.expose()), "nodeId": h(o.node_id.as_bytes()), "nodeKey": h(o.node_key.expose()),
                "fileKey": h(coffer_core::link::drop_file_key(&o.node_key, o.node_id).expose()),
                "metadata": h(o.metadata.as_slice()) }),
    )
}

fn op_owner_entry_seal(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let entry = owner_entry(i, "entry")?;
    let mut rng = i.rng()?;
    let sealed = coffer_core::link::seal_owner_entry(&i.key("ownerKey")?, &entry, &mut rng);
    used(&rng, "randomness")?;
    Ok(json!({ "linkId": h(entry.link_id().as_bytes()), "sealed": h(sealed) }))
}

fn op_owner_entry_open(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let e = coffer_core::link::open_owner_entry(
        &i.key("ownerKey")?,
        LinkId::from_bytes(i.arr("linkId")?),
        &i.hex("sealed")?,
    )?;
    Ok(json!({ "entry": h(encode(&e)) }))
}

fn op_link_reseal(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let entry = owner_entry(i, "ownerEntry")?;
    let target = link_target(i)?;
    let mut rng = i.rng()?;
    let out = coffer_core::link::reseal_link(&mut rng, &entry, &target)?;
    used(&rng, "randomness")?;
    Ok(json!({ "record": h(&out.record), "verifierHash": opt_h(out.verifier_hash) }))
}

fn op_link_rotate(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let entry = owner_entry(i, "ownerEntry")?;
    let target = link_target(i)?;
    let mut rng = i.rng()?;
    let out =
        coffer_core::link::rotate_link(&mut rng, &entry, i.str("origin")?, &target, i.u64("now")?)?;
    used(&rng, "randomness")?;
    Ok(
        json!({ "url": out.url.to_string(), "record": h(&out.record), "verifierHash": opt_h(out.verifier_hash), "newOwnerEntry": h(encode(&out.owner_entry)) }),
    )
}

fn op_link_url_parse(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let text = i.str("url")?;
    let url = coffer_core::link::LinkUrl::parse(text)?;
    if url.to_string() != text {
        return Err(bad("the parsed URL does not format back to its text"));
    }
    Ok(json!({
        "origin": url.origin(), "linkId": h(url.link_id().as_bytes()),
        "secret": h(url.secret().expose()), "passwordRequired": url.password_required(),
    }))
}

// ---------------------------------------------------------------------------------------------
// §11 HTTP API

fn cbor_json(v: &ciborium::Value) -> Result<Value, OpError> {
    use ciborium::Value as C;
    Ok(match v {
        C::Integer(n) => json!(u64::try_from(i128::from(*n)).map_err(|_| bad("negative integer"))?),
        C::Bytes(b) => h(b),
        C::Text(t) => json!(t),
        C::Bool(b) => json!(b),
        C::Null => Value::Null,
        C::Array(a) => Value::Array(a.iter().map(cbor_json).collect::<Result<_, _>>()?),
        _ => return Err(bad("value outside the CBOR profile")),
    })
}

fn op_body_decode(params: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let name = param_str(params, "structure")?;
    let body = coffer_core::api::BODIES
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| bad(format!("unknown structure {name}")))?;
    let mut bytes = i.hex("encoded")?;
    if let Some(pad) = i.opt_u64("padTo")? {
        let pad = usize::try_from(pad).map_err(|_| bad("padTo too large"))?;
        if pad > (1 << 26) {
            return Err(bad("padTo too large"));
        }
        bytes.resize(pad, 0);
    }
    let re = (body.decode)(&bytes).map_err(Error::from)?;
    if re != bytes {
        return Err(bad("re-encoding differs"));
    }
    let v: ciborium::Value =
        ciborium::de::from_reader(re.as_slice()).map_err(|e| bad(format!("cbor: {e}")))?;
    let ciborium::Value::Array(items) = v else {
        return Err(bad("not an array"));
    };
    if items.len() != body.fields.len() + 2 {
        return Err(bad("arity"));
    }
    let mut decoded = Map::new();
    for (name, item) in body.fields.iter().zip(items.iter().skip(2)) {
        decoded.insert(name.replace('_', "-"), cbor_json(item)?);
    }
    Ok(json!({ "decoded": decoded }))
}

fn op_problem_types(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let kind = coffer_core::api::ProblemKind::from_type_uri(i.str("type")?)
        .ok_or_else(|| bad("unknown problem type"))?;
    Ok(json!({ "name": kind.name(), "status": kind.status(), "title": kind.title() }))
}

fn op_session_token(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let t = coffer_core::api::SessionToken::from_header(i.str("header")?).map_err(Error::from)?;
    Ok(json!({ "token": h(t.expose()), "tokenHash": h(t.hash().as_bytes()) }))
}

fn op_upload_shape(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    use coffer_core::api::upload::{part_count, part_span};
    let (total, size) = (i.u64("totalLength")?, i.u64("partSize")?);
    let n = part_count(total, size)?;
    let (_, last) = part_span(total, size, n.saturating_sub(1))?;
    Ok(json!({ "partCount": n, "lastPartLength": last }))
}

fn op_byte_range(_: &Map<String, Value>, i: &In<'_>) -> OpResult {
    let len = i.u64("length")?;
    let r = coffer_core::api::ByteRange::parse(i.str("header")?, len)?;
    Ok(json!({ "first": r.first, "last": r.last, "contentRange": r.content_range(len) }))
}

// ---------------------------------------------------------------------------------------------
// The table.

macro_rules! op {
    ($name:literal, $files:literal, $section:literal, in: [$($i:literal),*], out: [$($o:literal),*], info: [$($x:literal),*], $handler:expr $(, split: $split:expr)?) => {
        OpSpec {
            name: $name,
            files: $files,
            section: $section,
            inputs: &[$($i),*],
            outputs: &[$($o),*],
            informational: &[$($x),*],
            handler: $handler,
            split: op!(@split $($split)?),
        }
    };
    (@split) => { None };
    (@split $s:expr) => { Some($s) };
}

/// Every operation, in spec order.
pub static OPS: &[OpSpec] = &[
    op!("Base64url", "encoding", "§1.7", in: ["text"], out: ["bytes"], info: [], op_base64url),
    op!("CborDecode", "encoding", "§1.4", in: ["encoded"], out: ["decoded"], info: [], op_cbor_decode),
    op!("CborDecodeNest", "encoding", "§1.2.3", in: ["encoded"], out: ["depth"], info: [], op_cbor_nest),
    op!("CborDecodeBytes", "encoding", "§1.4", in: ["encoded"], out: ["bytes"], info: [], op_cbor_bytes),
    op!("Hkdf", "primitives", "§2.2", in: ["ikm", "salt", "label", "context", "length"], out: ["info", "okm"], info: [], op_hkdf),
    op!("Ed25519Sign", "primitives", "§2.4.1", in: ["seed", "label", "msg"], out: ["publicKey", "sig", "signedMessage"], info: [], op_ed25519_sign),
    op!("Ed25519Verify", "primitives", "§2.4.3", in: ["publicKey", "label", "msg", "sig"], out: [], info: [], op_ed25519_verify),
    op!("X25519PublicKey", "primitives", "§2.5.1", in: ["publicKey", "secretKey"], out: ["publicKeyOfSecret"], info: [], op_x25519_public, split: split_x25519),
    op!("HpkeSeal", "primitives", "§2.6", in: ["publicKey", "aad", "msg", "randomness"], out: ["enc", "ct"], info: ["secretKey"], op_hpke_seal),
    op!("HpkeOpen", "primitives", "§2.6", in: ["secretKey", "enc", "info", "aad", "ct"], out: ["msg"], info: [], op_hpke_open),
    op!("Argon2ParamsCheck", "primitives", "§2.7", in: ["params"], out: [], info: [], op_argon2_check),
    op!("Argon2idDerive", "primitives", "§2.7", in: ["params", "password", "salt"], out: ["key"], info: [], op_argon2_derive),
    op!("SealEncrypt", "seal", "§3.2", in: ["key", "aad", "msg", "randomness"], out: ["sealed"], info: [], op_seal_encrypt),
    op!("SealOpen", "seal", "§3.2", in: ["key", "label", "aad", "sealed"], out: ["msg"], info: [], op_seal_open),
    op!("ContentEncrypt", "content", "§4.4", in: ["key", "msgLen", "randomness"], out: ["payloadKey", "commitment", "header", "ciphertext"], info: [], op_content_encrypt),
    op!("ContentDecrypt", "content", "§4.6", in: ["key", "ciphertext"], out: ["msg"], info: ["msgLen"], op_content_decrypt, split: split_content_decrypt),
    op!("ContentRangeDecrypt", "content", "§4.8", in: ["key", "header", "ciphertextLen", "rangeStart", "rangeEnd", "chunks"], out: ["ctRangeStart", "ctRangeEnd", "msg"], info: [], op_content_range),
    op!("MetadataSeal", "metadata", "§5.3", in: ["nodeKey", "nodeId", "revision", "name", "size", "mtime", "mediaType", "contentDigest", "randomness"], out: ["metadataKey", "aad", "plaintext", "sealed"], info: [], op_metadata_seal),
    op!("MetadataOpen", "metadata", "§5.5", in: ["nodeKey", "nodeId", "revision", "sealed"], out: ["name", "size", "mtime", "mediaType", "contentDigest", "plaintext"], info: [], op_metadata_open),
    op!("MasterKeyWrap", "account", "§6.3", in: ["exportKey", "accountId", "masterKey", "masterKeyGeneration", "randomness"], out: ["kek", "aad", "wrapped"], info: [], op_master_key_wrap),
    op!("MasterKeyUnwrap", "account", "§6.3", in: ["exportKey", "accountId", "masterKeyGeneration", "wrapped"], out: ["masterKey"], info: [], op_master_key_unwrap),
    op!("SecretsSeal", "account", "§6.4", in: ["masterKey", "masterKeyGeneration", "accountId", "identityGeneration", "signingSeed", "agreementSecret", "rootNodeId", "rootNodeKey", "randomness"], out: ["aad", "plaintext", "sealed"], info: [], op_secrets_seal),
    op!("SecretsOpen", "account", "§6.4", in: ["masterKey", "masterKeyGeneration", "accountId", "identityGeneration", "sealed"], out: ["signingSeed", "agreementSecret", "rootNodeId", "rootNodeKey"], info: [], op_secrets_open),
    op!("Unlock", "account", "§6.9", in: ["exportKey", "accountId", "keyBundle"], out: ["masterKey", "masterKeyGeneration", "identityGeneration", "rootNodeKey"], info: [], op_unlock),
    op!("DeletionProof", "account", "§9.5", in: ["sessionKey", "accountId", "userName", "proof"], out: [], info: [], op_deletion_proof),
    op!("OpaqueTranscript", "account", "§6.2",
        in: ["setupRandomness", "password", "registrationStartRandomness", "accountId", "created", "registerRandomness", "serverSetup", "passwordFile", "loginPassword", "loginStartRandomness", "serverLoginRandomness", "loginFinishRandomness"],
        out: ["serverSetup", "registrationRequest", "registrationResponse", "registrationUpload", "keyBundle", "signedIdentity", "passwordFile", "credentialRequest", "serverLoginState", "credentialResponse", "credentialFinalization", "sessionKey", "exportKey", "masterKey"],
        info: [],
        op_opaque, split: split_opaque),
    op!("IdentityCreate", "identity", "§6.5", in: ["userName", "generations"], out: ["generations", "headFingerprint"], info: [], op_identity_create, split: split_identity_create),
    op!("IdentityChainVerify", "identity", "§6.6", in: ["chain"], out: ["generation", "fingerprint"], info: [], op_identity_chain),
    op!("IdentityPin", "identity", "§6.6", in: ["chain", "pinUserName", "pinGeneration", "pinFingerprint"], out: ["generation", "fingerprint"], info: [], op_identity_pin),
    op!("FingerprintParse", "identity", "§6.7", in: ["text"], out: ["fingerprint"], info: [], op_fingerprint_parse),
    op!("NodeCreate", "tree", "§7.6",
        in: ["authorSeed", "parentId", "parentGeneration", "parentKey", "metadataRevision", "sealedMetadata", "time", "kind", "fileKey", "contentRevision", "ciphertextLength", "randomness"],
        out: ["nodeId", "nodeKey", "nodeKeyAad", "sealedNodeKey", "fileKeyAad", "sealedFileKey", "record", "signature", "signedNode"], info: [], op_node_create),
    op!("NodeVerify", "tree", "§7.4", in: ["signedNode", "authors", "expectedNodeId", "expectedParentId", "expectedParentGeneration", "expectedKeyGeneration"], out: ["record"], info: [], op_node_verify),
    op!("FolderKeyAt", "tree", "§7.2.3", in: ["folderRecord", "currentKey", "generation"], out: ["key"], info: ["backChainAad", "keysByGeneration"], op_folder_key_at),
    op!("NodeKeyOpen", "tree", "§7.5", in: ["parentRecord", "parentKey", "childRecord"], out: ["nodeKey"], info: ["nodeKeyAad"], op_node_key_open),
    op!("FileKeyOpen", "tree rotation", "§7.5", in: ["fileRecord", "nodeKey"], out: ["fileKey"], info: ["fileKeyAad"], op_file_key_open),
    op!("ShareSign", "share", "§8.2", in: ["ownerSeed", "record"], out: ["signature", "signedShare"], info: [], op_share_sign),
    op!("ShareVerify", "share", "§8.2", in: ["signedShare", "shareId", "ownerPublic", "minGeneration"], out: ["record"], info: [], op_share_verify),
    op!("GrantIssue", "share", "§8.3", in: ["granterSeed", "granterName", "granterIdentityGeneration", "shareRecord", "memberIndex", "folderId", "folderKey", "randomness"], out: ["grantInfo", "enc", "ciphertext", "grant", "signature", "signedGrant"], info: [], op_grant_issue),
    op!("GrantOpen", "share rotation", "§8.3", in: ["signedGrant", "shareId", "generation", "granterName", "granterIdentityGeneration", "granterPublic", "recipientName", "recipientIdentityGeneration", "recipientSecret"], out: ["folderKey"], info: [], op_grant_open),
    op!("MemberRemoval", "rotation", "§9.2",
        in: ["ownerSeed", "ownerName", "ownerIdentityGeneration", "shareRecord", "parentId", "parentGeneration", "parentKey", "folderKey", "subtree", "removed", "time", "mode", "eagerMetadata", "randomness"],
        out: ["nodeKeyAads", "backChainAads", "bundle", "newShareRecord", "newRecords", "newFolderKeys", "rekeyed"], info: [], op_member_removal),
    op!("RotationApply", "rotation", "§9.2.2", in: ["stateShare", "stateNodes", "ownerPublic", "bundle"], out: ["newShareRecord", "newNodes", "grants"], info: [], op_rotation_apply),
    op!("RecoveryRotation", "rotation", "§9.4",
        in: ["ownerSeed", "ownerName", "ownerIdentityGeneration", "shareRecord", "parentId", "parentGeneration", "parentKey", "folderKey", "subtree", "departed", "time", "randomness"],
        out: ["nodeKeyAads", "backChainAads", "bundle", "newShareRecord", "newRecords", "newFolderKeys", "rekeyed"], info: [], op_recovery_rotation),
    op!("RecoveryApply", "rotation", "§9.4", in: ["stateShare", "stateNodes", "ownerPublic", "bundle"], out: ["newShareRecord", "newNodes", "grants"], info: [], op_recovery_apply),
    op!("OpenPath", "rotation", "§9.2.4", in: ["records", "folderKey"], out: ["nodeKey"], info: [], op_open_path),
    op!("LinkUrlParse", "link_url", "§10.3", in: ["url"], out: ["origin", "linkId", "secret", "passwordRequired"], info: [], op_link_url_parse),
    op!("LinkCreate", "link", "§10.5",
        in: ["origin", "nodeId", "nodeKind", "generation", "nodeKey", "password", "argon2", "expiresAt", "maxDownloads", "uploadOnly", "now", "randomness"],
        out: ["url", "record", "ownerEntry", "verifierHash", "secret", "linkId", "linkKey", "pwKey", "salt", "capabilityKey", "verifier", "capability", "dropSecret", "dropPublic"], info: [], op_link_create),
    op!("LinkOpen", "link", "§10.6", in: ["url", "record", "now", "password", "pwKey"], out: ["nodeId", "nodeKind", "generation", "permission", "expiresAt", "maxDownloads", "nodeKey", "dropPublic"], info: [], op_link_open),
    op!("DropCreate", "link", "§10.9.2", in: ["url", "record", "now", "password", "pwKey", "metadata", "randomness"], out: ["nodeId", "nodeKey", "fileKey", "envelope"], info: [], op_drop_create),
    op!("DropOpen", "link", "§10.9.3", in: ["record", "folderKey", "linkId", "folderId", "envelope"], out: ["dropSecret", "nodeId", "nodeKey", "fileKey", "metadata"], info: [], op_drop_open),
    op!("OwnerEntrySeal", "link", "§10.10", in: ["ownerKey", "entry", "randomness"], out: ["linkId", "sealed"], info: [], op_owner_entry_seal),
    op!("OwnerEntryOpen", "link", "§10.10", in: ["ownerKey", "linkId", "sealed"], out: ["entry"], info: [], op_owner_entry_open),
    op!("LinkReseal", "link", "§10.11", in: ["ownerEntry", "nodeId", "nodeKind", "generation", "nodeKey", "randomness"], out: ["record", "verifierHash"], info: ["url"], op_link_reseal),
    op!("LinkRotate", "link", "§10.11", in: ["ownerEntry", "origin", "nodeId", "nodeKind", "generation", "nodeKey", "now", "randomness"], out: ["url", "record", "verifierHash", "newOwnerEntry"], info: ["oldUrl"], op_link_rotate),
    op!("BodyDecode", "api", "§11.17", in: ["encoded", "padTo"], out: ["decoded"], info: [], op_body_decode),
    op!("ProblemTypes", "api", "§11.3", in: ["type"], out: ["name", "status", "title"], info: [], op_problem_types),
    op!("SessionToken", "api", "§11.2.1", in: ["header"], out: ["token", "tokenHash"], info: [], op_session_token),
    op!("UploadShape", "api", "§11.9.1", in: ["totalLength", "partSize"], out: ["partCount", "lastPartLength"], info: [], op_upload_shape),
    op!("ByteRange", "api", "§11.9.7", in: ["header", "length"], out: ["first", "last", "contentRange"], info: [], op_byte_range),
];

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_vectors::format::VectorFile;

    fn files() -> Vec<(String, VectorFile)> {
        coffer_vectors::suites::SUITES
            .iter()
            .map(|s| {
                let p = coffer_vectors::default_dir().join(format!("{}.json", s.name));
                let text = std::fs::read_to_string(&p).expect("vector file");
                (
                    s.name.to_owned(),
                    serde_json::from_str(&text).expect("vector json"),
                )
            })
            .collect()
    }

    /// Every test field is an input, an output or informational; the runner never sends an
    /// expected output as an input; every operation is used by the files it names.
    #[test]
    fn table_matches_the_vector_files() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, file) in files() {
            for (g, t) in file.tests() {
                let spec = find(&g.kind).unwrap_or_else(|| panic!("{name}: no op {}", g.kind));
                assert!(
                    spec.files.split(' ').any(|f| f == name),
                    "{} not in {name}",
                    spec.name
                );
                seen.insert(spec.name);
                for k in t.fields.keys() {
                    assert!(
                        spec.inputs.contains(&k.as_str())
                            || spec.outputs.contains(&k.as_str())
                            || spec.informational.contains(&k.as_str()),
                        "{name} tcId {}: field {k} of {} unclassified",
                        t.tc_id,
                        g.kind
                    );
                }
                let (input, expected) = split(&g.kind, t).expect("split");
                for (k, v) in &expected {
                    // IdentityCreate sends the secret half of each generation and expects the
                    // public half under the same name: never the expected value itself.
                    assert!(
                        input.get(k) != Some(v),
                        "{name} tcId {}: {k} both sent and expected",
                        t.tc_id
                    );
                }
                if !t.is_valid() {
                    assert!(expected.is_empty());
                }
            }
        }
        for op in OPS {
            assert!(seen.contains(op.name), "op {} matches no group", op.name);
        }
    }

    #[test]
    fn unknown_op_is_unsupported_and_bad_input_is_a_driver_error() {
        assert_eq!(
            handle("NoSuchOp", &Map::new(), &Map::new()),
            Response::Unsupported
        );
        match handle("SealOpen", &Map::new(), &Map::new()) {
            Response::Error { class, message } => {
                assert_eq!(class, DRIVER_ERROR);
                assert!(message.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_randomness_is_reported() {
        let input = json!({ "key": "00".repeat(32), "aad": "", "msg": "", "randomness": "00" });
        let params = json!({ "label": "coffer/v1/test-vector" });
        match handle(
            "SealEncrypt",
            params.as_object().expect("obj"),
            input.as_object().expect("obj"),
        ) {
            Response::Error { class, .. } => assert_eq!(class, DRIVER_ERROR),
            other => panic!("{other:?}"),
        }
    }
}
