/*
 * icudata-stub.c - an empty ICU data table, the equivalent of ICU's own
 * "stubdata" library (icu/source/stubdata), built as libicudata.so.72 for the
 * image's runtime root instead of Debian's 31 MB one.
 *
 * Why it is safe: the node helper links libarchive, which links libxml2 (for
 * the XAR format), which links ICU for character-set conversion. The helper
 * only writes and reads tar; libxml2 is never called, and ICU with an empty
 * table answers U_MISSING_RESOURCE_ERROR instead of converting. The dynamic
 * loader only needs the symbol the ICU common library refers to.
 */
#include <stdint.h>

#ifndef ICU_MAJOR
#define ICU_MAJOR 72
#endif
#define PCP_CAT2(a, b) a##b
#define PCP_CAT(a, b) PCP_CAT2(a, b)
#define PCP_ENTRY PCP_CAT(PCP_CAT(icudt, ICU_MAJOR), _dat)

struct pcp_udatainfo {
	uint16_t size;
	uint16_t reserved;
	uint8_t is_big_endian, charset_family, sizeof_uchar, reserved_byte;
	uint8_t data_format[4];
	uint8_t format_version[4];
	uint8_t data_version[4];
};

struct pcp_icu_data_header {
	uint16_t header_size;
	uint8_t magic1, magic2;
	struct pcp_udatainfo info;
	char padding[8];
	uint32_t count;
	uint32_t toc[2];
};

extern const struct pcp_icu_data_header PCP_ENTRY;
__attribute__((visibility("default"))) const struct pcp_icu_data_header PCP_ENTRY = {
	32, 0xda, 0x27,
	{ sizeof(struct pcp_udatainfo), 0, 0 /* little endian */, 0 /* ASCII */, 2, 0,
	  { 0x54, 0x6f, 0x43, 0x50 } /* "ToCP" */, { 1, 0, 0, 0 }, { 0, 0, 0, 0 } },
	{ 0 }, 0, { 0, 0 },
};
