// libyaml's event parser behind the flat interface of yaml_events.h.
//
// Invariants: a reader owns at most one libyaml event at a time (`event`, when `has_event`),
// deleted before the next is parsed and by tf_yaml_close, so the pointers handed out in a
// tf_yaml_event stay valid exactly until then; after an error or the end of the stream no
// more parsing is attempted (libyaml's state is not valid after an error).
// Without libyaml's development files the build would fail on a missing header in the
// middle of other errors: say what is missing instead, first.
#if defined(__has_include) && !__has_include(<yaml.h>)
#error "libyaml's development files are missing: install libyaml-dev (Debian, Ubuntu) or libyaml-devel (Fedora), then build again"
#endif
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yaml_events.h"

struct tf_yaml_reader {
    yaml_parser_t parser;
    yaml_event_t event;
    int has_event;
    int finished;  // TF_YAML_END or TF_YAML_ERROR was returned
    tf_yaml_kind last;
};

tf_yaml_reader *tf_yaml_open(const unsigned char *text, size_t length) {
    tf_yaml_reader *reader = calloc(1, sizeof *reader);
    if (reader == NULL) return NULL;
    if (!yaml_parser_initialize(&reader->parser)) {
        free(reader);
        return NULL;
    }
    yaml_parser_set_input_string(&reader->parser, text, length);
    return reader;
}

void tf_yaml_next(tf_yaml_reader *reader, tf_yaml_event *event) {
    *event = (tf_yaml_event){0};
    if (reader->has_event) {
        yaml_event_delete(&reader->event);
        reader->has_event = 0;
    }
    if (reader->finished) {
        event->kind = reader->last;
        return;
    }
    if (!yaml_parser_parse(&reader->parser, &reader->event)) {
        reader->finished = 1;
        reader->last = TF_YAML_ERROR;
        event->kind = TF_YAML_ERROR;
        return;
    }
    reader->has_event = 1;
    yaml_event_t *e = &reader->event;
    event->line = e->start_mark.line + 1;
    event->column = e->start_mark.column + 1;
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        event->kind = TF_YAML_SCALAR;
        event->value = (const char *)e->data.scalar.value;
        event->length = e->data.scalar.length;
        event->anchor = (const char *)e->data.scalar.anchor;
        event->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_START_EVENT:
        event->kind = TF_YAML_SEQUENCE_START;
        event->anchor = (const char *)e->data.sequence_start.anchor;
        break;
    case YAML_SEQUENCE_END_EVENT:
        event->kind = TF_YAML_SEQUENCE_END;
        break;
    case YAML_MAPPING_START_EVENT:
        event->kind = TF_YAML_MAPPING_START;
        event->anchor = (const char *)e->data.mapping_start.anchor;
        break;
    case YAML_MAPPING_END_EVENT:
        event->kind = TF_YAML_MAPPING_END;
        break;
    case YAML_ALIAS_EVENT:
        event->kind = TF_YAML_ALIAS;
        event->value = (const char *)e->data.alias.anchor;
        event->length = event->value ? strlen(event->value) : 0;
        break;
    case YAML_DOCUMENT_START_EVENT:
        event->kind = TF_YAML_DOCUMENT_START;
        break;
    case YAML_STREAM_END_EVENT:
        event->kind = TF_YAML_END;
        reader->finished = 1;
        reader->last = TF_YAML_END;
        break;
    default:
        event->kind = TF_YAML_OTHER;
        break;
    }
}

const char *tf_yaml_problem(const tf_yaml_reader *reader, size_t *line, size_t *column, const char **context) {
    *line = reader->parser.problem_mark.line + 1;
    *column = reader->parser.problem_mark.column + 1;
    *context = reader->parser.context;
    return reader->parser.problem ? reader->parser.problem : "invalid YAML";
}

void tf_yaml_close(tf_yaml_reader *reader) {
    if (reader == NULL) return;
    if (reader->has_event) yaml_event_delete(&reader->event);
    yaml_parser_delete(&reader->parser);
    free(reader);
}
