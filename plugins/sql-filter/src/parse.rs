//! From SQL text to a [`Predicate`]: sqlparser (PostgreSQL dialect) parses, this module
//! keeps the part of SQL a row filter needs and names what it does not support.

use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// The operator with its operands swapped: `1 < a` is `a > 1`.
    fn flipped(self) -> Self {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// The digits as written (`-12.50`), converted per column type at evaluation.
    Number(String),
    Text(String),
}

/// A WHERE expression over one batch's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    And(Box<Predicate>, Box<Predicate>),
    Or(Box<Predicate>, Box<Predicate>),
    Not(Box<Predicate>),
    /// `TRUE`, `FALSE` or `NULL` as a whole predicate.
    Constant(Option<bool>),
    /// A boolean column on its own: `active`.
    Column(String),
    Compare {
        column: String,
        op: CmpOp,
        value: Literal,
    },
    CompareColumns {
        left: String,
        op: CmpOp,
        right: String,
    },
    IsNull {
        column: String,
        negated: bool,
    },
    InList {
        column: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        column: String,
        low: Literal,
        high: Literal,
        negated: bool,
    },
    Like {
        column: String,
        pattern: String,
        negated: bool,
        case_insensitive: bool,
    },
}

impl Predicate {
    /// Parses a WHERE expression (without the `WHERE`).
    pub fn parse(sql: &str) -> Result<Self, String> {
        let dialect = PostgreSqlDialect {};
        let mut parser = Parser::new(&dialect)
            .try_with_sql(sql)
            .map_err(|e| format!("`where`: {e}"))?;
        let expr = parser.parse_expr().map_err(|e| format!("`where`: {e}"))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(format!(
                "`where`: unexpected {} at {} after the expression",
                next.token, next.span.start
            ));
        }
        predicate(&expr)
    }

    /// The column names the predicate reads, each once, in first-use order.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    fn collect_columns(&self, out: &mut Vec<String>) {
        let mut add = |name: &String| {
            if !out.contains(name) {
                out.push(name.clone());
            }
        };
        match self {
            Predicate::And(a, b) | Predicate::Or(a, b) => {
                a.collect_columns(out);
                b.collect_columns(out);
            }
            Predicate::Not(p) => p.collect_columns(out),
            Predicate::Constant(_) => {}
            Predicate::Column(column)
            | Predicate::Compare { column, .. }
            | Predicate::IsNull { column, .. }
            | Predicate::InList { column, .. }
            | Predicate::Between { column, .. }
            | Predicate::Like { column, .. } => add(column),
            Predicate::CompareColumns { left, right, .. } => {
                add(left);
                add(right);
            }
        }
    }
}

/// An operand: a column or a literal.
enum Operand {
    Column(String),
    Literal(Literal),
}

fn unsupported(expr: &Expr) -> String {
    format!(
        "`where`: `{expr}` is not supported (columns, literals, comparisons, AND/OR/NOT, IS [NOT] NULL, [NOT] IN, BETWEEN, [I]LIKE)"
    )
}

fn predicate(expr: &Expr) -> Result<Predicate, String> {
    Ok(match expr {
        Expr::Nested(inner) => predicate(inner)?,
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => {
                Predicate::And(Box::new(predicate(left)?), Box::new(predicate(right)?))
            }
            BinaryOperator::Or => {
                Predicate::Or(Box::new(predicate(left)?), Box::new(predicate(right)?))
            }
            _ => {
                let op = match op {
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::NotEq,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::LtEq,
                    BinaryOperator::Gt => CmpOp::Gt,
                    BinaryOperator::GtEq => CmpOp::GtEq,
                    _ => return Err(unsupported(expr)),
                };
                match (operand(left)?, operand(right)?) {
                    (Operand::Column(column), Operand::Literal(value)) => {
                        Predicate::Compare { column, op, value }
                    }
                    (Operand::Literal(value), Operand::Column(column)) => Predicate::Compare {
                        column,
                        op: op.flipped(),
                        value,
                    },
                    (Operand::Column(left), Operand::Column(right)) => {
                        Predicate::CompareColumns { left, op, right }
                    }
                    (Operand::Literal(_), Operand::Literal(_)) => {
                        return Err(format!(
                            "`where`: `{expr}` compares two literals; name a column"
                        ));
                    }
                }
            }
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        } => Predicate::Not(Box::new(predicate(inner)?)),
        Expr::IsNull(inner) => Predicate::IsNull {
            column: column(inner)?,
            negated: false,
        },
        Expr::IsNotNull(inner) => Predicate::IsNull {
            column: column(inner)?,
            negated: true,
        },
        Expr::IsTrue(inner) => Predicate::Compare {
            column: column(inner)?,
            op: CmpOp::Eq,
            value: Literal::Bool(true),
        },
        Expr::IsFalse(inner) => Predicate::Compare {
            column: column(inner)?,
            op: CmpOp::Eq,
            value: Literal::Bool(false),
        },
        Expr::InList {
            expr: inner,
            list,
            negated,
        } => Predicate::InList {
            column: column(inner)?,
            values: list.iter().map(literal).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => Predicate::Between {
            column: column(inner)?,
            low: literal(low)?,
            high: literal(high)?,
            negated: *negated,
        },
        Expr::Like {
            negated,
            any: false,
            expr: inner,
            pattern,
            escape_char: None,
        } => like(inner, pattern, *negated, false)?,
        Expr::ILike {
            negated,
            any: false,
            expr: inner,
            pattern,
            escape_char: None,
        } => like(inner, pattern, *negated, true)?,
        Expr::Value(value) => match &value.value {
            ast::Value::Boolean(b) => Predicate::Constant(Some(*b)),
            ast::Value::Null => Predicate::Constant(None),
            _ => return Err(format!("`where`: `{expr}` is not a condition")),
        },
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Predicate::Column(column(expr)?),
        _ => return Err(unsupported(expr)),
    })
}

fn like(
    inner: &Expr,
    pattern: &Expr,
    negated: bool,
    case_insensitive: bool,
) -> Result<Predicate, String> {
    match literal(pattern)? {
        Literal::Text(pattern) => Ok(Predicate::Like {
            column: column(inner)?,
            pattern,
            negated,
            case_insensitive,
        }),
        _ => Err(format!("`where`: the pattern `{pattern}` must be a string")),
    }
}

fn operand(expr: &Expr) -> Result<Operand, String> {
    match expr {
        Expr::Nested(inner) => operand(inner),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Ok(Operand::Column(column(expr)?)),
        Expr::Value(_) | Expr::UnaryOp { .. } => Ok(Operand::Literal(literal(expr)?)),
        _ => Err(unsupported(expr)),
    }
}

/// A column reference. Unquoted names fold to lower case, as in PostgreSQL;
/// `"Quoted"` names keep their case.
fn column(expr: &Expr) -> Result<String, String> {
    let ident = match expr {
        Expr::Nested(inner) => return column(inner),
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) if parts.len() == 1 => &parts[0],
        _ => return Err(format!("`where`: expected a column name, found `{expr}`")),
    };
    Ok(match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    })
}

fn literal(expr: &Expr) -> Result<Literal, String> {
    Ok(match expr {
        Expr::Nested(inner) => literal(inner)?,
        Expr::Value(value) => match &value.value {
            ast::Value::Null => Literal::Null,
            ast::Value::Boolean(b) => Literal::Bool(*b),
            ast::Value::Number(digits, _) => Literal::Number(digits.clone()),
            ast::Value::SingleQuotedString(text)
            | ast::Value::EscapedStringLiteral(text)
            | ast::Value::DollarQuotedString(ast::DollarQuotedString { value: text, .. }) => {
                Literal::Text(text.clone())
            }
            _ => return Err(format!("`where`: unsupported literal `{expr}`")),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => match literal(inner)? {
            Literal::Number(digits) => Literal::Number(match digits.strip_prefix('-') {
                Some(positive) => positive.to_owned(),
                None => format!("-{digits}"),
            }),
            _ => return Err(format!("`where`: `{expr}` negates a non-number")),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr: inner,
        } => literal(inner)?,
        _ => return Err(format!("`where`: expected a literal, found `{expr}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_managed_service_example_parses() {
        let p = Predicate::parse("status = 'paid' AND total > 100 AND _op <> 'd'").expect("parses");
        assert_eq!(p.columns(), ["status", "total", "_op"]);
    }

    #[test]
    fn literals_on_the_left_flip_the_operator() {
        let p = Predicate::parse("100 < total").expect("parses");
        assert_eq!(
            p,
            Predicate::Compare {
                column: "total".into(),
                op: CmpOp::Gt,
                value: Literal::Number("100".into())
            }
        );
    }

    #[test]
    fn unquoted_names_fold_quoted_do_not() {
        let p = Predicate::parse(r#"Status = 'x' OR "Name" IS NULL"#).expect("parses");
        assert_eq!(p.columns(), ["status", "Name"]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let error = Predicate::parse("total > ").expect_err("incomplete");
        assert!(error.starts_with("`where`:"), "{error}");
        let error = Predicate::parse("lower(name) = 'x'").expect_err("function");
        assert!(error.contains("not supported"), "{error}");
        let error = Predicate::parse("a = 1 b").expect_err("trailing");
        assert!(error.contains("unexpected"), "{error}");
        let error = Predicate::parse("1 = 1").expect_err("no column");
        assert!(error.contains("two literals"), "{error}");
    }
}
