/* evidence.h: the plug-in interface for hardware evidence (AMD SEV-SNP
 * attestation reports, Intel TDX quotes, SGX DCAP quotes) that a launcher may
 * add to its MEASURE message (docs/internals/evidence.md).
 *
 * A verifier checks one kind of evidence completely: its signature chain up to
 * the vendor's root, the platform's TCB, and that the evidence's report_data
 * field is the binding the CAS expects (evidence_binding: a nonce from the CAS
 * and the launcher's own measurements, so evidence cannot be replayed for
 * another request or another binary). It then reports the claims. The CAS
 * compares the claims with the session; evidence_check re-checks the binding
 * and refuses debug TEEs whatever the verifier says.
 *
 * The production registry (evidence_find) holds only verifiers that check the
 * whole chain. None does yet: the SEV-SNP report parser below checks the
 * report's signature with a VCEK certificate it is given, not that VCEK's
 * chain to AMD's root, so it is not registered. The test double ("test",
 * tests/lib/evidence_double.c, HMAC with a key published in the tests) is
 * linked only into test programs and never registered. */
#ifndef CONFIDOC_EVIDENCE_H
#define CONFIDOC_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define EVIDENCE_MAX_LEN ((size_t)64 * 1024) /* evidence larger than this is refused */
#define EVIDENCE_REPORT_DATA_LEN 64
#define EVIDENCE_MEASUREMENT_MAX 64
#define EVIDENCE_NONCE_LEN 32
#define EVIDENCE_HASH_LEN 32 /* a SHA-256 measurement of the executable or a config file */
#define EVIDENCE_MAX_CONFIGS 64

enum evidence_platform {
    EVIDENCE_PLATFORM_TEST,    /* the test double */
    EVIDENCE_PLATFORM_SEV_SNP, /* measurement: MEASUREMENT (SHA-384 of the launch image) */
    EVIDENCE_PLATFORM_TDX,     /* measurement: MRTD (SHA-384); RTMRs in later fields */
    EVIDENCE_PLATFORM_SGX,     /* measurement: MRENCLAVE (SHA-256); signer: MRSIGNER */
};

#define EVIDENCE_FLAG_DEBUG 1u /* the TEE may be debugged: its memory is not private */
/* the TCB the evidence is signed for is not the current one */
#define EVIDENCE_FLAG_TCB_OUTDATED 2u

/* What verified evidence says. */
struct evidence_claims {
    enum evidence_platform platform;
    unsigned char measurement[EVIDENCE_MEASUREMENT_MAX];
    size_t measurement_len;
    unsigned char signer[EVIDENCE_MEASUREMENT_MAX];      /* SGX MRSIGNER, SNP author key digest */
    size_t signer_len;                                   /* 0: none */
    unsigned char report_data[EVIDENCE_REPORT_DATA_LEN]; /* echoed from the evidence */
    uint64_t tcb;   /* the platform's TCB version as the evidence reports it */
    unsigned flags; /* EVIDENCE_FLAG_* */
};

/* A verifier. verify checks evidence[0..len) completely (see above) and that
 * its report_data equals report_data, and fills *out only on success.
 * CD_ERR_INVALID: malformed; CD_ERR_CRYPTO: a signature, the chain, the TCB or
 * the binding does not verify. */
struct evidence_verifier {
    const char *name; /* "sev-snp", "tdx", "sgx-dcap", "test" */
    cd_err (*verify)(const void *evidence, size_t len,
                     const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                     struct evidence_claims *out);
};

/* The production verifier called name; NULL when there is none (today: every
 * name, see above). */
const struct evidence_verifier *evidence_find(const char *name);

/* The binding rule: report_data = SHA-512("confidoc-evidence-v1" || 0x00 ||
 * nonce || exe || u32 big-endian nconfigs || configs[0] || ...), with the
 * nonce the CAS sent for this request, exe the SHA-256 of the executable the
 * launcher opened, configs the SHA-256 of each config file in the session's
 * order. The launcher asks its TEE for evidence over this value; the CAS
 * computes it from its own nonce and the measurements the launcher reports.
 * CD_ERR_TOO_LARGE above EVIDENCE_MAX_CONFIGS. */
cd_err evidence_binding(const unsigned char nonce[EVIDENCE_NONCE_LEN],
                        const unsigned char exe[EVIDENCE_HASH_LEN],
                        const unsigned char (*configs)[EVIDENCE_HASH_LEN], size_t nconfigs,
                        unsigned char out[EVIDENCE_REPORT_DATA_LEN]);

/* Runs v on the evidence and then checks, whatever v said, that the claimed
 * report_data is report_data (constant time) and that the TEE is not a debug
 * one (CD_ERR_CRYPTO otherwise). *out is filled only on CD_OK. */
cd_err evidence_check(const struct evidence_verifier *v, const void *evidence, size_t len,
                      const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                      struct evidence_claims *out);

/* ---- AMD SEV-SNP attestation report (ABI spec 56860, table "ATTESTATION_REPORT") ---- */

#define EVIDENCE_SNP_REPORT_LEN 0x4A0
#define EVIDENCE_SNP_SIGNED_LEN 0x2A0 /* the signature covers bytes [0, 0x2A0) */
#define EVIDENCE_SNP_POLICY_DEBUG (1ull << 19)

struct evidence_snp_report {
    uint32_t version; /* 2 and later */
    uint32_t guest_svn;
    uint64_t policy;
    uint32_t vmpl;
    uint32_t signature_algo; /* 1: ECDSA P-384 with SHA-384 */
    uint64_t current_tcb;
    uint64_t platform_info;
    unsigned char report_data[64];
    unsigned char measurement[48];
    unsigned char host_data[32];
    unsigned char id_key_digest[48];
    unsigned char author_key_digest[48];
    unsigned char report_id[32];
    uint64_t reported_tcb;
    unsigned char chip_id[64];
    unsigned char sig_r[72]; /* little-endian, zero-padded */
    unsigned char sig_s[72];
};

/* Parses the fixed layout (exactly EVIDENCE_SNP_REPORT_LEN bytes, version >= 2,
 * signature algorithm 1); CD_ERR_INVALID otherwise. Checks no signature. */
cd_err evidence_snp_parse(const void *report, size_t len, struct evidence_snp_report *out);

/* Verifies the report's signature with the public key (ECDSA P-384) of the
 * VCEK certificate vcek_pem. Does NOT verify that certificate (VCEK -> ASK ->
 * ARK, AMD's root) nor its TCB extensions: that is the registered verifier's
 * job (docs/internals/evidence.md, "next step"). CD_ERR_INVALID for a
 * malformed report or certificate, CD_ERR_CRYPTO for a bad signature. */
cd_err evidence_snp_check_signature(const void *report, size_t len, const char *vcek_pem,
                                    size_t pem_len);

/* The claims of a parsed report (platform SEV-SNP; debug from its policy). */
void evidence_snp_claims(const struct evidence_snp_report *r, struct evidence_claims *out);

#endif
