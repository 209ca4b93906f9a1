// The events of libyaml's parser, flattened for Swift: the configuration file (-config) is
// read through them. libyaml's own header is included by yaml_events.c only, so that no Swift
// module sees <stdio.h> and friends through this one.
#ifndef TCP_FALLBACK_YAML_EVENTS_H
#define TCP_FALLBACK_YAML_EVENTS_H

#include <stddef.h>

typedef enum {
    TF_YAML_END = 0,         // the stream ended
    TF_YAML_SCALAR,          // value, length, anchor, plain
    TF_YAML_SEQUENCE_START,  // anchor
    TF_YAML_SEQUENCE_END,
    TF_YAML_MAPPING_START,   // anchor
    TF_YAML_MAPPING_END,
    TF_YAML_ALIAS,           // value, length: the anchor it names
    TF_YAML_DOCUMENT_START,
    TF_YAML_OTHER,           // stream and document ends and starts that carry nothing
    TF_YAML_ERROR,           // see tf_yaml_problem
} tf_yaml_kind;

typedef struct {
    tf_yaml_kind kind;
    /// A scalar's value or an alias's anchor name: `length` bytes, valid until the next
    /// tf_yaml_next or tf_yaml_close on the same reader.
    const char *value;
    size_t length;
    /// The anchor a scalar, sequence or mapping defines (NUL-terminated), or NULL; valid as `value`.
    const char *anchor;
    /// 1 for a plain (unquoted) scalar.
    int plain;
    /// Where the event starts, both from 1.
    size_t line, column;
} tf_yaml_event;

typedef struct tf_yaml_reader tf_yaml_reader;

/// A reader of `length` bytes at `text`, which must stay valid until tf_yaml_close. NULL if
/// memory ran out.
tf_yaml_reader *tf_yaml_open(const unsigned char *text, size_t length);

/// Fills `event` with the next event; after TF_YAML_END or TF_YAML_ERROR it returns the same.
void tf_yaml_next(tf_yaml_reader *reader, tf_yaml_event *event);

/// Why the reader stopped with TF_YAML_ERROR: libyaml's problem, where it was seen (from 1),
/// and the context it gives (or NULL).
const char *tf_yaml_problem(const tf_yaml_reader *reader, size_t *line, size_t *column, const char **context);

/// Frees the reader and its last event.
void tf_yaml_close(tf_yaml_reader *reader);

#endif
