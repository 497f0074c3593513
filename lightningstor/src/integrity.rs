//! Content-MD5 and the `x-amz-checksum-*` family: which checksums a request asks for, checking
//! them once the body is in, and the multipart forms (composite `-N` and full-object CRCs).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::HeaderMap;
use s3s::S3Error;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::Checksum;
use s3s::s3_error;

use crate::meta::Checksums;

pub const FULL_OBJECT: &str = "FULL_OBJECT";
pub const COMPOSITE: &str = "COMPOSITE";

/// The checksum algorithms S3 knows, by their header names' suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name().to_ascii_lowercase())
    }

    pub fn get(self, checksums: &Checksums) -> Option<&String> {
        match self {
            Algorithm::Crc32 => checksums.crc32.as_ref(),
            Algorithm::Crc32c => checksums.crc32c.as_ref(),
            Algorithm::Crc64Nvme => checksums.crc64nvme.as_ref(),
            Algorithm::Sha1 => checksums.sha1.as_ref(),
            Algorithm::Sha256 => checksums.sha256.as_ref(),
        }
    }

    fn slot(self, checksums: &mut Checksums) -> &mut Option<String> {
        match self {
            Algorithm::Crc32 => &mut checksums.crc32,
            Algorithm::Crc32c => &mut checksums.crc32c,
            Algorithm::Crc64Nvme => &mut checksums.crc64nvme,
            Algorithm::Sha1 => &mut checksums.sha1,
            Algorithm::Sha256 => &mut checksums.sha256,
        }
    }

    fn enable(self, hasher: &mut ChecksumHasher) {
        match self {
            Algorithm::Crc32 => hasher.crc32 = Some(Crc32::new()),
            Algorithm::Crc32c => hasher.crc32c = Some(Crc32c::new()),
            Algorithm::Crc64Nvme => hasher.crc64nvme = Some(Crc64Nvme::new()),
            Algorithm::Sha1 => hasher.sha1 = Some(Sha1::new()),
            Algorithm::Sha256 => hasher.sha256 = Some(Sha256::new()),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Crc32 => Crc32::checksum(data).to_vec(),
            Algorithm::Crc32c => Crc32c::checksum(data).to_vec(),
            Algorithm::Crc64Nvme => Crc64Nvme::checksum(data).to_vec(),
            Algorithm::Sha1 => Sha1::checksum(data).as_ref().to_vec(),
            Algorithm::Sha256 => Sha256::checksum(data).as_ref().to_vec(),
        }
    }

    /// The CRC behind the algorithm: only CRCs combine part values into a whole-object value.
    fn crc_kind(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Algorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Algorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Algorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Algorithm::Sha1 | Algorithm::Sha256 => None,
        }
    }
}

/// What a request promised about its body.
#[derive(Debug, Default)]
pub struct Expected {
    /// Base64 Content-MD5.
    pub content_md5: Option<String>,
    /// Values sent as headers, checked when the body is complete.
    pub values: Vec<(Algorithm, String)>,
    /// Algorithms whose value comes in the aws-chunked trailer or that were only named
    /// (x-amz-sdk-checksum-algorithm): computed and stored.
    pub computed: Vec<Algorithm>,
}

impl Expected {
    /// Reads the checksum headers of a PutObject or UploadPart request.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, S3Error> {
        let mut expected = Expected {
            content_md5: header(headers, "content-md5"),
            ..Expected::default()
        };
        if let Some(md5) = &expected.content_md5 {
            let valid = BASE64.decode(md5).is_ok_and(|bytes| bytes.len() == 16);
            if !valid {
                return Err(s3_error!(
                    InvalidDigest,
                    "The Content-MD5 you specified is not valid."
                ));
            }
        }
        for algorithm in Algorithm::ALL {
            if let Some(value) = header(headers, &algorithm.header()) {
                expected.values.push((algorithm, value));
            }
        }
        let mut named = Vec::new();
        if let Some(trailer) = header(headers, "x-amz-trailer") {
            for name in trailer.split(',') {
                let name = name.trim().to_ascii_lowercase();
                if let Some(suffix) = name.strip_prefix("x-amz-checksum-") {
                    named.push(Algorithm::parse(suffix).ok_or_else(|| {
                        s3_error!(InvalidArgument, "unknown trailing checksum {name}")
                    })?);
                }
            }
        }
        for name in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
            if let Some(value) = header(headers, name) {
                named.push(Algorithm::parse(&value).ok_or_else(|| {
                    s3_error!(InvalidArgument, "unknown checksum algorithm {value:?}")
                })?);
            }
        }
        for algorithm in named {
            if !expected.values.iter().any(|(known, _)| *known == algorithm)
                && !expected.computed.contains(&algorithm)
            {
                expected.computed.push(algorithm);
            }
        }
        Ok(expected)
    }

    /// A hasher computing every checksum this request needs, plus `extra`.
    pub fn hasher(&self, extra: &[Algorithm]) -> ChecksumHasher {
        let mut hasher = ChecksumHasher::default();
        let promised = self.values.iter().map(|(algorithm, _)| *algorithm);
        for algorithm in promised
            .chain(self.computed.iter().copied())
            .chain(extra.iter().copied())
        {
            algorithm.enable(&mut hasher);
        }
        hasher
    }

    /// Checks the body's digests against what was promised, in headers or in `trailers`.
    pub fn verify(
        &self,
        md5: &[u8; 16],
        computed: &Checksum,
        trailers: Option<&HeaderMap>,
    ) -> Result<Checksums, S3Error> {
        if let Some(expected) = &self.content_md5
            && BASE64.encode(md5) != *expected
        {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let computed = from_dto(computed);
        let mut promised = self.values.clone();
        if let Some(trailers) = trailers {
            for algorithm in &self.computed {
                if let Some(value) = header(trailers, &algorithm.header()) {
                    promised.push((*algorithm, value));
                }
            }
        }
        for (algorithm, value) in &promised {
            if algorithm.get(&computed) != Some(value) {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                ));
            }
        }
        Ok(computed)
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
}

pub fn from_dto(checksum: &Checksum) -> Checksums {
    let mut out = Checksums {
        crc32: checksum.checksum_crc32.clone(),
        crc32c: checksum.checksum_crc32c.clone(),
        crc64nvme: checksum.checksum_crc64nvme.clone(),
        sha1: checksum.checksum_sha1.clone(),
        sha256: checksum.checksum_sha256.clone(),
        checksum_type: None,
    };
    if Algorithm::ALL
        .iter()
        .any(|algorithm| algorithm.get(&out).is_some())
    {
        out.checksum_type = Some(FULL_OBJECT.to_owned());
    }
    out
}

/// The ETag of a single-part object: its MD5 in hex.
pub fn md5_etag(md5: &[u8; 16]) -> String {
    hex::encode(md5)
}

/// The ETag of a multipart object: MD5 of the parts' binary MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[&str]) -> String {
    let mut md5 = Md5::new();
    for etag in part_etags {
        md5.update(&hex::decode(etag).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5.finalize()), part_etags.len())
}

/// One part as the multipart checksum needs it.
pub struct PartChecksum<'a> {
    pub size: u64,
    pub checksums: &'a Checksums,
}

/// The object checksum of a completed multipart upload created with `algorithm`:
/// `FULL_OBJECT` combines part CRCs into the CRC of the whole object; `COMPOSITE` is the
/// digest of the concatenated part digests with `-N`.
pub fn multipart_checksum(
    algorithm: Algorithm,
    checksum_type: &str,
    parts: &[PartChecksum<'_>],
) -> Result<Checksums, S3Error> {
    let mut digests = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let value = algorithm.get(part.checksums).ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "part {} was uploaded without a {} checksum, which this upload requires",
                index + 1,
                algorithm.name()
            )
        })?;
        let digest = BASE64
            .decode(value)
            .map_err(|_| s3_error!(InternalError, "stored part checksum is not base64"))?;
        digests.push(digest);
    }
    let mut out = Checksums::default();
    let value = if checksum_type == FULL_OBJECT {
        let kind = algorithm.crc_kind().ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "FULL_OBJECT checksums exist only for CRC algorithms, not {}",
                algorithm.name()
            )
        })?;
        let mut combined: Option<u64> = None;
        for (digest, part) in digests.iter().zip(parts) {
            let value = digest
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            combined = Some(match combined {
                None => value,
                Some(sofar) => crc_fast::checksum_combine(kind, sofar, value, part.size),
            });
        }
        let width = digests.first().map_or(4, Vec::len);
        let bytes = combined.unwrap_or(0).to_be_bytes();
        BASE64.encode(&bytes[bytes.len() - width..])
    } else {
        let joined: Vec<u8> = digests.concat();
        format!(
            "{}-{}",
            BASE64.encode(algorithm.digest(&joined)),
            parts.len()
        )
    };
    *algorithm.slot(&mut out) = Some(value);
    out.checksum_type = Some(checksum_type.to_owned());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        // Two parts "a" and "b".
        let a = md5_etag(&Md5::checksum(b"a"));
        let b = md5_etag(&Md5::checksum(b"b"));
        let mut joined = Md5::checksum(b"a").to_vec();
        joined.extend(Md5::checksum(b"b"));
        assert_eq!(
            multipart_etag(&[&a, &b]),
            format!("{}-2", hex::encode(Md5::checksum(&joined)))
        );
    }

    #[test]
    fn full_object_crc_equals_crc_of_the_whole() {
        for algorithm in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme] {
            let parts: [&[u8]; 3] = [b"hello ", b"multipart ", b"world"];
            let sums: Vec<Checksums> = parts
                .iter()
                .map(|part| {
                    let mut sums = Checksums::default();
                    *algorithm.slot(&mut sums) = Some(BASE64.encode(algorithm.digest(part)));
                    sums
                })
                .collect();
            let described: Vec<PartChecksum<'_>> = parts
                .iter()
                .zip(&sums)
                .map(|(part, checksums)| PartChecksum {
                    size: part.len() as u64,
                    checksums,
                })
                .collect();
            let combined = multipart_checksum(algorithm, FULL_OBJECT, &described).unwrap();
            let whole = BASE64.encode(algorithm.digest(b"hello multipart world"));
            assert_eq!(
                algorithm.get(&combined),
                Some(&whole),
                "{}",
                algorithm.name()
            );
        }
    }

    #[test]
    fn trailer_checksum_mismatch_is_bad_digest() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-crc32".parse().unwrap());
        let expected = Expected::from_headers(&headers).unwrap();
        let mut hasher = expected.hasher(&[]);
        hasher.update(b"data");
        let computed = hasher.finalize();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        let md5 = Md5::checksum(b"data");
        let err = expected
            .verify(&md5, &computed, Some(&trailers))
            .unwrap_err();
        assert_eq!(err.code().as_str(), "BadDigest");
        let good = BASE64.encode(Crc32::checksum(b"data"));
        trailers.insert("x-amz-checksum-crc32", good.parse().unwrap());
        let stored = expected.verify(&md5, &computed, Some(&trailers)).unwrap();
        assert_eq!(stored.crc32, Some(good));
    }
}
