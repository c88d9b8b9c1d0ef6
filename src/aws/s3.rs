//! S3 for model versions and batch runs: bucket checks and creation, streamed and multipart uploads, small
//! documents, listings and streamed downloads.
use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};

use super::{fail, Aws};
use crate::error::{Error, Result};

/// Told how many more bytes reached S3; the caller decides how to show it (`ui::progress`).
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// Files above this go up in parts, so neither memory nor one failed request limits the model size.
pub const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// S3's minimum part size is 5 MiB (except the last part).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// What HeadObject says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// The ETag, which changes whenever the bytes do.
    pub etag: Option<String>,
    /// User metadata (`x-amz-meta-*`), lowercase keys.
    pub metadata: BTreeMap<String, String>,
}

pub async fn head_object(aws: &Aws, bucket: &str, key: &str) -> Result<Option<ObjectHead>> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(ObjectHead {
            size: out.content_length().unwrap_or_default().max(0) as u64,
            etag: out.e_tag().map(str::to_string),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect())
                .unwrap_or_default(),
        })),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(None),
        Err(e) => Err(fail(format!("read `s3://{bucket}/{key}`"), e).into()),
    }
}

pub async fn bucket_exists(aws: &Aws, bucket: &str) -> Result<bool> {
    match aws.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(false),
        Err(e) => Err(fail(format!("read bucket `{bucket}`"), e).into()),
    }
}

/// Creates the bucket (or reuses one we already own) and turns on versioning and AES256 default encryption.
pub async fn create_bucket(aws: &Aws, bucket: &str) -> Result<()> {
    let mut req = aws.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that rejects an explicit location constraint.
    if aws.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|se| se.is_bucket_already_owned_by_you()) => {}
        Err(e) if e.as_service_error().is_some_and(|se| se.is_bucket_already_exists()) => {
            return Err(Error::user(format!("bucket `{bucket}` belongs to another AWS account"))
                .help("bucket names are global; pick another `model.bucket`"))
        }
        Err(e) => return Err(fail(format!("create bucket `{bucket}`"), e).into()),
    }
    aws.s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(|e| fail(format!("enable versioning on bucket `{bucket}`"), e))?;
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| Error::cloud(format!("cannot build the encryption rule: {e}")))?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build())
        .build()
        .map_err(|e| Error::cloud(format!("cannot build the encryption configuration: {e}")))?;
    aws.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(|e| fail(format!("turn on default encryption for bucket `{bucket}`"), e))?;
    Ok(())
}

/// Uploads `path` without holding it in memory: one streamed PUT below [`MULTIPART_THRESHOLD`], parts above it.
pub async fn upload_file(
    aws: &Aws,
    bucket: &str,
    key: &str,
    path: &Path,
    metadata: &BTreeMap<String, String>,
    progress: Progress<'_>,
) -> Result<()> {
    let size = std::fs::metadata(path).map_err(|e| crate::error::io_error(path, "read", e))?.len();
    if size > MULTIPART_THRESHOLD {
        return upload_multipart(aws, bucket, key, path, size, PART_SIZE, metadata, progress).await;
    }
    let body =
        ByteStream::from_path(path).await.map_err(|e| Error::user(format!("cannot read `{}`: {e}", path.display())))?;
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .content_length(size as i64)
        .set_metadata(Some(metadata.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| fail(format!("upload `s3://{bucket}/{key}`"), e))?;
    progress(size);
    Ok(())
}

/// A multipart upload reading one part at a time from disk; any failure aborts it so no parts linger (and bill).
#[allow(clippy::too_many_arguments)]
pub async fn upload_multipart(
    aws: &Aws,
    bucket: &str,
    key: &str,
    path: &Path,
    size: u64,
    part_size: u64,
    metadata: &BTreeMap<String, String>,
    progress: Progress<'_>,
) -> Result<()> {
    let created = aws
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_metadata(Some(metadata.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| fail(format!("start a multipart upload to `s3://{bucket}/{key}`"), e))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| Error::cloud(format!("S3 started a multipart upload to `s3://{bucket}/{key}` without an id")))?
        .to_string();
    match upload_parts(aws, bucket, key, path, size, part_size, &upload_id, progress).await {
        Ok(()) => Ok(()),
        Err(err) => {
            // Best effort: the upload already failed, and the abort's own failure would hide the first error.
            let _ = aws.s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
            Err(err)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_parts(
    aws: &Aws,
    bucket: &str,
    key: &str,
    path: &Path,
    size: u64,
    part_size: u64,
    upload_id: &str,
    progress: Progress<'_>,
) -> Result<()> {
    let mut parts = Vec::new();
    let mut offset = 0u64;
    let mut number = 1i32;
    while offset < size {
        let len = part_size.min(size - offset);
        let body = ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(Length::Exact(len))
            .build()
            .await
            .map_err(|e| Error::user(format!("cannot read `{}`: {e}", path.display())))?;
        let out = aws
            .s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(len as i64)
            .body(body)
            .send()
            .await
            .map_err(|e| fail(format!("upload part {number} of `s3://{bucket}/{key}`"), e))?;
        parts.push(CompletedPart::builder().set_e_tag(out.e_tag().map(str::to_string)).part_number(number).build());
        progress(len);
        offset += len;
        number += 1;
    }
    aws.s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| fail(format!("complete the multipart upload to `s3://{bucket}/{key}`"), e))?;
    Ok(())
}

pub async fn put_json(aws: &Aws, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
    put_bytes(aws, bucket, key, "application/json", body).await
}

/// Deletes one object; S3 answers the same whether or not it existed.
pub async fn delete_object(aws: &Aws, bucket: &str, key: &str) -> Result<()> {
    aws.s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| fail(format!("delete `s3://{bucket}/{key}`"), e))?;
    Ok(())
}

/// A small object's bytes, or `None` when it (or its bucket) does not exist.
pub async fn get_small(aws: &Aws, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(get_small_tagged(aws, bucket, key).await?.map(|(bytes, _)| bytes))
}

/// The "directories" directly under `prefix` (which ends with `/`), each returned with its trailing `/`.
pub async fn list_prefixes(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| match e.as_service_error().is_some_and(|se| se.is_no_such_bucket()) {
                true => Error::user(format!("bucket `{bucket}` does not exist"))
                    .help("check `model.bucket`, or create it with `mlambda model push --create-bucket`"),
                false => fail(format!("list `s3://{bucket}/{prefix}`"), e).into(),
            })?;
        out.extend(page.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_string));
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Every key under `prefix` with its size, in S3's (lexicographic) order.
pub async fn list_keys(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page =
            aws.s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token).send().await.map_err(
                |e| match e.as_service_error().is_some_and(|se| se.is_no_such_bucket()) {
                    true => Error::user(format!("bucket `{bucket}` does not exist")).help("check the `s3://` address"),
                    false => fail(format!("list `s3://{bucket}/{prefix}`"), e).into(),
                },
            )?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                out.push((k.to_string(), o.size().unwrap_or_default().max(0) as u64));
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Streams an object into `path` (memory stays flat whatever its size); `None` when it does not exist.
pub async fn download(aws: &Aws, bucket: &str, key: &str, path: &Path) -> Result<Option<u64>> {
    use tokio::io::AsyncWriteExt;
    let mut out = match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(fail(format!("read `s3://{bucket}/{key}`"), e).into()),
    };
    let io = |e: std::io::Error| Error::user(format!("cannot write {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut n = 0u64;
    while let Some(chunk) =
        out.body.try_next().await.map_err(|e| Error::cloud(format!("failed to read `s3://{bucket}/{key}`: {e}")))?
    {
        n += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(Some(n))
}

/// Puts bytes as one object (slices and run records: each well under S3's 5 GB single-put limit).
/// A small object's bytes and ETag, or `None` when it (or its bucket) does not exist: what a conditional
/// rewrite ([`put_json_if`]) starts from.
pub async fn get_small_tagged(aws: &Aws, bucket: &str, key: &str) -> Result<Option<(Vec<u8>, String)>> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default().to_string();
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| Error::cloud(format!("failed to read `s3://{bucket}/{key}`: {e}")))?;
            Ok(Some((bytes.to_vec(), etag)))
        }
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => Ok(None),
        Err(e) if aws_sdk_s3::error::ProvideErrorMetadata::code(&e) == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(fail(format!("read `s3://{bucket}/{key}`"), e).into()),
    }
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIf {
    Written,
    /// Someone else wrote the object since it was read (S3's 412): read again and retry.
    Changed,
    /// The bucket does not exist; nothing was written.
    NoBucket,
}

/// Writes JSON only if the object is still what was read: the ETag then (`Some`), or absent (`None`).
pub async fn put_json_if(aws: &Aws, bucket: &str, key: &str, body: Vec<u8>, etag: Option<&str>) -> Result<PutIf> {
    let req = aws.s3.put_object().bucket(bucket).key(key).content_type("application/json").body(ByteStream::from(body));
    let req = match etag {
        Some(tag) => req.if_match(tag),
        None => req.if_none_match("*"),
    };
    match req.send().await {
        Ok(_) => Ok(PutIf::Written),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(PutIf::Changed),
        Err(e) if aws_sdk_s3::error::ProvideErrorMetadata::code(&e) == Some("NoSuchBucket") => Ok(PutIf::NoBucket),
        Err(e) => Err(fail(format!("write `s3://{bucket}/{key}`"), e).into()),
    }
}

pub async fn put_bytes(aws: &Aws, bucket: &str, key: &str, content_type: &str, body: Vec<u8>) -> Result<()> {
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| fail(format!("write `s3://{bucket}/{key}`"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use sha2::Digest;

    use super::*;

    /// The real moto server: multipart is exactly what a mock would get wrong.
    async fn moto() -> Aws {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
            "AWS_ENDPOINT_URL is not set: this test needs moto; run `eval \"$(scripts/stack env)\"` first"
        );
        Aws::connect(&crate::aws::Target::default()).await.expect("connect to moto")
    }

    #[tokio::test]
    async fn a_large_file_goes_up_in_parts_and_reads_back_whole() {
        let aws = moto().await;
        let bucket = format!("mlambda-mp-{}-{}", std::process::id(), rand_suffix());
        create_bucket(&aws, &bucket).await.unwrap();
        // Idempotent: a second create reuses the bucket.
        create_bucket(&aws, &bucket).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let mut f = std::fs::File::create(&path).unwrap();
        let mut hasher = sha2::Sha256::new();
        for i in 0..(10 * 1024 + 77) {
            let block: Vec<u8> = (0..1024u32).map(|j| ((i as u32 * 31 + j) % 251) as u8).collect();
            hasher.update(&block);
            f.write_all(&block).unwrap();
        }
        drop(f);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > PART_SIZE.max(MULTIPART_THRESHOLD), "the file must need more than one part");
        let sha = hex::encode(hasher.finalize());
        let meta = BTreeMap::from([("sha256".to_string(), sha.clone())]);

        upload_file(&aws, &bucket, "m/model.onnx", &path, &meta, &|_| {}).await.unwrap();

        let head = head_object(&aws, &bucket, "m/model.onnx").await.unwrap().expect("object exists");
        assert_eq!(head.size, size);
        assert_eq!(head.metadata.get("sha256"), Some(&sha));
        let back = aws.s3.get_object().bucket(&bucket).key("m/model.onnx").send().await.unwrap();
        let bytes = back.body.collect().await.unwrap().to_vec();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
        assert!(head_object(&aws, &bucket, "m/missing").await.unwrap().is_none());
    }

    fn rand_suffix() -> u32 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
    }
}
