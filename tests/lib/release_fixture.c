/* release_fixture.c: the launcher hash and session of the release tests (release_fixture.h). */
#include "release_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "release/measure.h"

void release_fixture_open(char self[RELEASE_HASH_HEX], struct policy_set **set)
{
    char text[512];
    struct cd_diag d;
    assert_int_equal(release_sha256_file("/proc/self/exe", self), CD_ERR_CONFIG); /* a link */
    int fd = open("/proc/self/exe", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(release_sha256_fd(fd, self), CD_OK);
    close(fd);
    snprintf(text, sizeof(text),
             "name: svc\nmeasurements:\n  executable: " RELEASE_FIXTURE_EXE "\n  user: \"%u\"\n"
             "  mount: /run/svc\n",
             (unsigned)getuid());
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("svc.yaml", text, strlen(text), NULL, set, &d), CD_OK);
}
