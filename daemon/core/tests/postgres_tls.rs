//! PostgreSQL over TLS: `?sslmode=require` must start a TLS handshake (rustls), not
//! fail with "SQLx was built without TLS support". A fake server stands in for
//! PostgreSQL, so the test needs no database and no certificate.

#![allow(clippy::unwrap_used)] // tests may unwrap

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

#[tokio::test]
async fn sslmode_require_speaks_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        conn.read_exact(&mut request).await.unwrap();
        assert_eq!(request, SSL_REQUEST, "the client asks for TLS first");
        // "S": this server does TLS; the next bytes must be a TLS ClientHello.
        conn.write_all(b"S").await.unwrap();
        let mut record = [0u8; 3];
        conn.read_exact(&mut record).await.unwrap();
        record
    });
    let url = format!("postgres://hotline:x@127.0.0.1:{port}/hotline?sslmode=require");
    // One connection rather than the store's pool, which would retry until its timeout.
    let err = sqlx::PgConnection::connect(&url).await.err();
    // A handshake record (0x16) of TLS 1.x (0x03 0x0N).
    let record = server.await.unwrap();
    assert_eq!(record[..2], [0x16, 0x03], "{record:?}");
    // The fake server never finishes the handshake, so connecting fails.
    assert!(err.is_some());
}
