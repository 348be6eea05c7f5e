/* snp.c: the AMD SEV-SNP attestation report's fixed layout (0x4A0 bytes,
 * little-endian; AMD SEV-SNP ABI specification 56860, ATTESTATION_REPORT). */
#include "evidence/evidence.h"

#include <string.h>

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

cd_err evidence_snp_parse(const void *report, size_t len, struct evidence_snp_report *out)
{
    const unsigned char *p = report;
    struct evidence_snp_report r;

    if (p == NULL || out == NULL || len != EVIDENCE_SNP_REPORT_LEN)
        return CD_ERR_INVALID;
    r.version = le32(p + 0x000);
    r.guest_svn = le32(p + 0x004);
    r.policy = le64(p + 0x008);
    r.vmpl = le32(p + 0x030);
    r.signature_algo = le32(p + 0x034);
    r.current_tcb = le64(p + 0x038);
    r.platform_info = le64(p + 0x040);
    memcpy(r.report_data, p + 0x050, sizeof(r.report_data));
    memcpy(r.measurement, p + 0x090, sizeof(r.measurement));
    memcpy(r.host_data, p + 0x0C0, sizeof(r.host_data));
    memcpy(r.id_key_digest, p + 0x0E0, sizeof(r.id_key_digest));
    memcpy(r.author_key_digest, p + 0x110, sizeof(r.author_key_digest));
    memcpy(r.report_id, p + 0x140, sizeof(r.report_id));
    r.reported_tcb = le64(p + 0x180);
    memcpy(r.chip_id, p + 0x1A0, sizeof(r.chip_id));
    memcpy(r.sig_r, p + 0x2A0, sizeof(r.sig_r));
    memcpy(r.sig_s, p + 0x2A0 + 0x48, sizeof(r.sig_s));
    /* version 1 is SEV's older, different report; algorithm 1 is ECDSA P-384 */
    if (r.version < 2 || r.signature_algo != 1 || r.vmpl > 3)
        return CD_ERR_INVALID;
    *out = r;
    return CD_OK;
}

void evidence_snp_claims(const struct evidence_snp_report *r, struct evidence_claims *out)
{
    memset(out, 0, sizeof(*out));
    out->platform = EVIDENCE_PLATFORM_SEV_SNP;
    memcpy(out->measurement, r->measurement, sizeof(r->measurement));
    out->measurement_len = sizeof(r->measurement);
    memcpy(out->signer, r->author_key_digest, sizeof(r->author_key_digest));
    out->signer_len = sizeof(r->author_key_digest);
    memcpy(out->report_data, r->report_data, sizeof(r->report_data));
    out->tcb = r->reported_tcb;
    if ((r->policy & EVIDENCE_SNP_POLICY_DEBUG) != 0)
        out->flags |= EVIDENCE_FLAG_DEBUG;
    if (r->reported_tcb != r->current_tcb)
        out->flags |= EVIDENCE_FLAG_TCB_OUTDATED;
}
