/* font: the glyphs of the 5x8 bitmap font the PNG plots write with. Data
 * only; drawing them (scale, rotation, clipping) is plot.h's. */
#ifndef VB_BENCH_FONT_H
#define VB_BENCH_FONT_H

/* Size of one glyph in font pixels (columns, rows). */
#define FONT_GLYPH_W 5
#define FONT_GLYPH_H 8

/* The glyph of c: FONT_GLYPH_H rows of FONT_GLYPH_W characters, row after
 * row, '#' for a set pixel, '.' otherwise (static storage). A character
 * without a glyph gets the glyph of '?'. */
const char *font_glyph_rows(char c);

#endif
